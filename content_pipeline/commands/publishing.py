"""Publishing as catalogue commands: a publish run, halting and resuming it everywhere, and the quarantine
command (damaged ledger records, and an item's post taken down and held, or released)."""

from __future__ import annotations

import re

from content_pipeline.commands.context import Context
from content_pipeline.commands.outcome import Artifact, Line, Outcome, said
from content_pipeline.commands.params import (
    ApproveParams,
    HaltParams,
    NoParams,
    PublishParams,
    QuarantineParams,
    ReleaseParams,
)
from content_pipeline.errors import LeaseHeldError, PipelineError
from content_pipeline.ops.damaged import accept, damaged
from content_pipeline.publish.command import (
    GuardedTarget,
    look_after_schedule,
    publish_command,
    publish_lease,
    require_target,
    take_down,
)
from content_pipeline.publish.halt import halt, halted, resume
from content_pipeline.publish.holds import holds, release
from content_pipeline.publish.log import AttemptLog, operator
from content_pipeline.publish.spike import watch
from content_pipeline.publish.watchdog import REPORTED
from content_pipeline.publish.window import POLICY_HOURS, approve_until, close_window, require_approval

POLICY = re.compile(r"\bpolic(y|ies)\b", re.IGNORECASE)  # a quarantine reason that names a policy incident


def publish(ctx: Context, params: PublishParams) -> Outcome:
    """Consolidated successes not yet live on the target, at most max_posts: live only when the three
    governance signals are truthy (or, with PUBLISH_APPROVAL=ui, an approver approves them in a flow run's
    form), simulated otherwise; each post once, looked up on the target before any create."""
    settings = ctx.settings.with_run_id()
    assert settings.run_id is not None
    store = ctx.store()
    try:
        target = require_target(ctx.publishing, settings)
    except PipelineError as exc:
        return said(False, f"publish: {exc}", f"publish failed: {exc}")
    try:
        result = publish_command(store, settings, target, settings.run_id, ctx.publishing, dry_run=params.dry_run)
    finally:
        target.close()
    texts = result.lines()[:-1] if result.stopped else result.lines()
    lines = [Line(f"publish: {t}") for t in texts]
    if result.stopped:
        lines.append(Line(f"publish stopped: {result.stopped}", "error", err=True))
    artifact = Artifact("publish", markdown="\n".join(f"- {t}" for t in result.lines()), description=result.lines()[0])
    return Outcome(result.ok, "; ".join(result.lines()), tuple(lines), artifacts=(artifact,))


def halt_command(ctx: Context, params: HaltParams) -> Outcome:
    """Halt publishing everywhere, with the reason every publish run shows until `publish resume`; the posts
    the posting plan scheduled ahead on the target go back to draft (the watch does it too, every 15 min)."""
    store = ctx.store()
    halt(store, params.reason, operator())
    line = f"publish: halted everywhere: {halted(store)}; `content-pipeline publish resume` lifts it"
    return said(True, line, line, *_schedule(ctx, "publish halt")[1])


def _schedule(ctx: Context, what: str) -> tuple[bool, list[str]]:
    """The missed-schedule watchdog (and, while halted, the scheduled posts taken back) under the target's
    publish lease: whether it found nothing left missed, and its lines. With no target, or the lease busy
    (that publish run looks itself), it says so in a line."""
    settings = ctx.settings.with_run_id()
    assert settings.run_id is not None
    if settings.posting_plan() is None:  # no plan, nothing scheduled to look at
        return True, []
    store = ctx.store()
    try:
        target = require_target(ctx.publishing, settings)
    except PipelineError as exc:
        return True, [f"{what}: the schedule was not looked at: {exc}"]
    try:
        with publish_lease(store, settings, target.name, settings.run_id) as lease:
            found, lines = look_after_schedule(store, settings, GuardedTarget(target, lease), settings.run_id, lease)
    except LeaseHeldError as exc:
        return True, [f"{what}: the schedule was not looked at: {exc} (that run looks at it)"]
    finally:
        target.close()
    return found.counts[REPORTED] == 0, [f"{what}: {line}" for line in lines]


def resume_command(ctx: Context, params: NoParams) -> Outcome:
    """Lift a halt."""
    line = "publish: resumed" if resume(ctx.store()) else "publish: was not halted"
    return said(True, line, line)


def approve_command(ctx: Context, params: ApproveParams) -> Outcome:
    """Open (or move) the release window: live publishing approved until a time; or end it now. Outside it,
    every publish run simulates and says the window closed."""
    store = ctx.store()
    if params.close:
        gate = close_window(store, operator())
        line = f"publish: the release window closed at {gate.shown()}: nothing goes out live until an approval"
    else:
        assert params.until is not None
        gate = approve_until(store, params.until, operator(), params.reason)
        still = "" if gate.open() else " (already past: every publish run simulates)"
        line = f"publish: live publishing approved until {gate.shown()} by {gate.by}{still}"
    return said(True, line, line)


def watch_command(ctx: Context, params: NoParams) -> Outcome:
    """The failure-spike watch: when more than PUBLISH_FAILURE_SPIKE of the last hour's live publish attempts
    failed, halt publishing everywhere; then the missed-schedule watchdog. A flow run that halts, or that finds
    a scheduled post still not live (PUBLISH_MISSED=report, or halted), fails, so the failure automation
    announces it."""
    settings = ctx.settings
    watched = watch(ctx.store(), settings.publish_failure_spike, settings.publish_spike_min_attempts)
    line = f"publish watch: {watched.line()}"
    on_time, schedule = _schedule(ctx, "publish watch")
    lines = (Line(line, "error" if watched.halted_now else "info"), *(Line(t) for t in schedule))
    return Outcome(not watched.halted_now and on_time, "; ".join([line, *schedule]), lines)


def quarantine_command(ctx: Context, params: QuarantineParams) -> Outcome:
    """The damaged ledger records and the items held from publishing; with accept_loss, the loss of damaged
    records accepted (their slugs are generated again); with a slug, its post taken down and held."""
    settings = ctx.settings
    if params.slug is not None:
        store = ctx.store()
        line = take_down(store, settings.with_run_id(), ctx.publishing, params.slug, params.reason, params.trash)
        hours = params.require_approval_hours or (POLICY_HOURS if POLICY.search(params.reason) else None)
        if hours is None:
            return said(True, line, line)
        gate = require_approval(store, hours, f"quarantine of {params.slug}: {params.reason}", operator())
        needed = f"quarantine: a UI approval is required for every publish run until {gate.shown()}"
        return said(True, line, line, needed)
    if params.accept_loss is not None:
        chosen = accept(ctx.store(), params.accept_loss)
        texts = [f"quarantine: loss accepted: {r.where} (slug {r.slug or 'unreadable'})" for r in chosen]
        return said(True, f"{len(chosen)} loss(es) accepted", *texts)
    store = ctx.store(read_only=True)
    found, held = damaged(store), sorted(holds(store).items())
    records = [
        {"where": r.where, "what": r.what, "slug": r.slug, "kept": r.kept, "accepted": r.accepted} for r in found
    ] + [{"held_from_publishing": slug, **entry} for slug, entry in held]
    texts = [r.line() for r in found] or ["quarantine: no damaged ledger records"]
    texts += [
        f"quarantine: {slug} held from publishing since {entry.get('at', '?')} by {entry.get('by', '?')}: "
        f"{entry['reason']} (`content-pipeline quarantine release {slug}` lets it go)"
        for slug, entry in held
    ]
    summary = f"{len(found)} damaged record(s), {len(held)} item(s) held from publishing"
    return Outcome(True, summary, tuple(Line(t) for t in texts), tuple(records))


def release_command(ctx: Context, params: ReleaseParams) -> Outcome:
    """Let an item held from publishing go: the next publish run may publish it again."""
    settings = ctx.settings.with_run_id()
    assert settings.run_id is not None
    store = ctx.store()
    with AttemptLog(store, settings.run_id) as log:
        line = release(store, log, params.slug, operator())
    return said(True, line, line)
