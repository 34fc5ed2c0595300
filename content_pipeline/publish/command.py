"""The publish stage's core: read the attempt log, the catalogue and the quarantine, plan, ask the approver
when PUBLISH_APPROVAL=ui, then publish (simulated unless governance says live)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from content_pipeline.configs import LeaseConfig, PublishConfig, QualityConfig
from content_pipeline.errors import BadInputError, LeaseHeldError
from content_pipeline.intake.catalogue import load_catalogue
from content_pipeline.publish import window
from content_pipeline.publish.governance import SIGNALS, Approval, truthy
from content_pipeline.publish.halt import halted
from content_pipeline.publish.history import History, read_history
from content_pipeline.publish.holds import hold, holds
from content_pipeline.publish.log import AttemptLog, operator
from content_pipeline.publish.plan import Plan, plan
from content_pipeline.publish.post import Post
from content_pipeline.publish.publisher import PublishResult, publish_run
from content_pipeline.publish.quality import QualityRules, parse_phrases
from content_pipeline.publish.spike import watch
from content_pipeline.publish.targets import RemotePost, Target, TargetFailed, TargetRefused, TargetUnavailable
from content_pipeline.publish.watchdog import Watchdog, due, unschedule, watch_schedule
from content_pipeline.publish.window import approve_until, gates
from content_pipeline.store import Store, layout
from content_pipeline.store.host import Holder
from content_pipeline.store.lease import Lease

NO_UI = "an approver's yes is needed, and no approver can answer a run outside a Prefect flow run"


class Publishing(Protocol):
    """What the edge provides: the target a name stands for, and an approver to ask (flows/publishing.py)."""

    def target(self, name: str) -> Target | None:
        """The target `name` (a built-in one the settings configure, or a block); None when none is set up."""
        ...

    def approve(self, the_plan: Plan, target: str) -> Approval | None:
        """Show the plan to an approver and wait for the answer; None where nobody can be asked."""
        ...


def require_target(publishing: Publishing, settings: PublishConfig) -> Target:
    """PUBLISH_TARGET's target, or one line saying how to configure it."""
    name = settings.publish_target
    found = publishing.target(name)
    if found is None:
        need = "WP_URL, WP_USER and WP_APP_PASSWORD" if name == "wordpress" else "PUBLISH_WEBHOOK_URL and _SECRET"
        raise BadInputError(f"publish target {name!r} is not configured: set {need}, or save a block named {name}")
    return found


def quality_rules(settings: QualityConfig) -> QualityRules:
    """The quality gate's rules as the PUBLISH_* settings give them (0 readability, 1 near-copy: off)."""
    return QualityRules(
        settings.publish_min_words,
        settings.publish_max_words,
        settings.publish_min_readability or None,
        settings.publish_near_copy if settings.publish_near_copy < 1 else None,
        parse_phrases(settings.publish_forbidden_phrases),
    )


def plan_for(
    store: Store, settings: PublishConfig, target: str, since_hours: float | None = None
) -> tuple[Plan, list[str]]:
    """The plan of a publish run to `target` (with `since_hours`: only posts whose last attempt failed in that
    window), and the attempt log's damaged lines (named, kept aside)."""
    history = read_history(store)
    items = {item.slug: item for item in load_catalogue(settings.catalogue, settings.s3_options()).items}
    since = None if since_hours is None else datetime.now(UTC) - timedelta(hours=since_hours)
    found = plan(
        store,
        target,
        items,
        history,
        set(holds(store)),
        settings.publish_max_posts,
        since,
        rules=quality_rules(settings),
        posting=settings.posting_plan(),
        now=window.now(),
    )
    return found, [f"the attempt log has a damaged line, kept in quarantine/: {d}" for d in history.damaged]


def _not_worth_asking(store: Store, settings: PublishConfig, the_plan: Plan) -> str | None:
    """Why an approver's yes could make no difference (nothing to send, another signal missing, a halt), or
    None when they are worth asking."""
    signals = settings.publish_signals()
    others = [name for name in SIGNALS if name != "PUBLISH_APPROVAL_GRANTED" and not truthy(signals[name])]
    if not the_plan.candidates:
        return "nothing to publish"
    if others:
        return f"{', '.join(others)} not truthy"
    now = gates(store)
    return "publishing is halted" if now.halted is not None else now.window_closed


def _needs_approver(store: Store, settings: PublishConfig, the_plan: Plan) -> bool:
    """Whether this run asks an approver: a policy incident requires it; PUBLISH_APPROVAL=ui does, unless an
    open release window already stands for the approver's yes; PUBLISH_APPROVAL=fallback does when a post's
    content was written by FALLBACK_MODEL (a window does not stand for that)."""
    now = gates(store)
    fallback = settings.publish_approval == "fallback" and any(c.fallback for c in the_plan.candidates)
    return now.ui_required is not None or fallback or (settings.publish_approval == "ui" and now.window_open is None)


def _approval(
    store: Store, settings: PublishConfig, the_plan: Plan, target: str, publishing: Publishing | None
) -> Approval:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    if publishing is None:
        return Approval(False, None, at, NO_UI)
    why_not = _not_worth_asking(store, settings, the_plan)
    if why_not is not None:
        return Approval(False, None, at, f"no approver was asked ({why_not})")
    return publishing.approve(the_plan, target) or Approval(False, None, at, NO_UI)


def publish_command(
    store: Store,
    settings: PublishConfig,
    target: Target,
    run_id: str,
    publishing: Publishing | None = None,
    *,
    dry_run: bool = False,
    since_hours: float | None = None,
) -> PublishResult:
    """One publish run to `target`. With PUBLISH_APPROVAL=ui the approver decides this run's approval signal;
    where nobody can be asked, every post is simulated and the reason says why."""
    if dry_run or store.read_only:
        the_plan, damaged = plan_for(store, settings, target.name, since_hours)
        result = publish_run(store, target, settings.publish_signals(), the_plan, run_id, dry_run=True)
        result.notes = damaged + result.notes
        return result
    with publish_lease(store, settings, target.name, run_id) as lease:  # planned and sent by one worker at a time
        _, schedule = look_after_schedule(store, settings, GuardedTarget(target, lease), run_id, lease)
        the_plan, damaged = plan_for(store, settings, target.name, since_hours)
        approval = None
        if _needs_approver(store, settings, the_plan):
            approval = _approval(store, settings, the_plan, target.name, publishing)
            if approval.approved and approval.approver and approval.until:  # a yes for a window, not one run
                approve_until(store, datetime.fromisoformat(approval.until), approval.approver, "approved in the UI")
        result = publish_run(
            store,
            GuardedTarget(target, lease),
            settings.publish_signals(),
            the_plan,
            run_id,
            max_retries=settings.publish_max_retries,
            approval=approval,
            guard=lambda: lease.check(f"writing to the attempt log of {target.name}"),
            on_failure=lambda: _spike(store, settings),
        )
    result.notes = damaged + schedule + result.notes
    return result


def _ahead(history: History, target: str, moment: datetime) -> bool:
    """Whether a post on `target` is scheduled for a slot still to come."""
    return any(
        where == target and state.slot is not None and datetime.fromisoformat(state.slot) > moment
        for (where, _), state in history.posts.items()
    )


def look_after_schedule(
    store: Store, settings: PublishConfig, target: Target, run_id: str, lease: Lease
) -> tuple[Watchdog, list[str]]:
    """Under the publish lease: the missed-schedule watchdog, and, while publishing is halted, the posts
    scheduled ahead taken back to draft; what it found, and its lines (none when no slot was due). A target
    that cannot be asked is a line too: the next look tries again."""
    history = read_history(store, keep_damaged=False)
    moment, stopped = window.now(), halted(store)
    grace = timedelta(minutes=settings.publish_missed_grace_min)
    if not due(history, target.name, moment, grace) and not (stopped and _ahead(history, target.name, moment)):
        return Watchdog(), []
    why_not = "PUBLISH_MISSED=report" if settings.publish_missed == "report" else None
    why_not = f"publishing is halted: {stopped}" if stopped else why_not
    try:
        with AttemptLog(store, run_id, guard=lambda: lease.check("recording the schedule's check")) as log:
            found = watch_schedule(log, target, history, moment, grace, why_not)
            back = unschedule(log, target, history, moment, f"publishing halted: {stopped}") if stopped else []
    except (TargetUnavailable, TargetFailed, TargetRefused) as exc:
        return Watchdog(), [f"schedule: could not look at the scheduled posts: {exc}"]
    return found, [found.line(), *found.lines, *back]


def _spike(store: Store, settings: PublishConfig) -> str | None:
    """After a failed post: halt publishing when the last hour shows a failure spike; the halt's line."""
    watched = watch(store, settings.publish_failure_spike, settings.publish_spike_min_attempts)
    return watched.line() if watched.halted_now else None


@contextmanager
def publish_lease(store: Store, settings: LeaseConfig, target: str, run_id: str) -> Iterator[Lease]:
    """Hold the target's publish lease (waiting up to LEASE_WAIT_S for another worker's run to end): a look-up
    and a create are never raced by a second worker."""
    lease = Lease(
        store, layout.publish_lock(target), Holder.me(run_id), settings.lease_ttl_s, f"publishing to {target}"
    )
    lease.acquire(settings.lease_wait_s)
    try:
        yield lease
    finally:
        lease.release()


def take_down(
    store: Store, settings: PublishConfig, publishing: Publishing, slug: str, reason: str, trash: bool
) -> str:
    """Hold `slug` from publishing and take its post down on PUBLISH_TARGET, under the target's publish
    lease (no publish run sends it meanwhile); a take-down after the lease was lost is not sent."""
    assert settings.run_id is not None
    target = require_target(publishing, settings)
    try:
        with (
            publish_lease(store, settings, target.name, settings.run_id) as lease,
            AttemptLog(store, settings.run_id, guard=lambda: lease.check(f"quarantining {slug}")) as log,
        ):
            history = read_history(store)  # read under the lease
            return hold(store, log, GuardedTarget(target, lease), history, slug, reason, operator(), trash)
    finally:
        target.close()


class GuardedTarget:
    """A target whose every change (create, update, take down) is preceded by the publish lease's check: a
    worker paused past its lease (a frozen VM, SIGSTOP) and taken over stops before sending anything the new
    holder sends. Look-ups and everything else go straight to the target."""

    def __init__(self, target: Target, lease: Lease) -> None:
        self.target, self.lease, self.name = target, lease, target.name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.target, attr)

    def check(self) -> Any:
        return self.target.check()

    def find(self, slug: str, post_id: str | None) -> RemotePost | None:
        return self.target.find(slug, post_id)

    def create(self, post: Post, key: str, slot: datetime | None = None) -> RemotePost:
        self.lease.check(f"creating the post {post.slug} on {self.name}")
        return self.target.create(post, key, slot)

    def update(self, found: RemotePost, post: Post, key: str, slot: datetime | None = None) -> RemotePost:
        self.lease.check(f"updating the post {post.slug} on {self.name}")
        return self.target.update(found, post, key, slot)

    def go_live(self, found: RemotePost, slug: str) -> RemotePost:
        self.lease.check(f"publishing the missed post {slug} on {self.name}")
        return self.target.go_live(found, slug)

    def take_down(self, found: RemotePost, slug: str, trash: bool) -> RemotePost:
        self.lease.check(f"taking down the post {slug} on {self.name}")
        return self.target.take_down(found, slug, trash)

    def close(self) -> None:
        self.target.close()


def publish_stage(
    store: Store, settings: PublishConfig, publishing: Publishing, run_id: str, since_hours: float | None = None
) -> list[str]:
    """go-live's last stage: publish to PUBLISH_TARGET when it is configured (a note when it is not), each
    line of the result a note of the run's report. A target that refuses us (401, 403) fails the run."""
    target = publishing.target(settings.publish_target)
    if target is None:
        return [f"publish: skipped: the target {settings.publish_target!r} is not configured"]
    try:
        result = publish_command(
            store, settings, target, run_id, publishing, dry_run=store.read_only, since_hours=since_hours
        )
    except LeaseHeldError as exc:  # another worker's publish run: it sends these posts, or the next run does
        return [f"publish: skipped: {exc}"]
    finally:
        target.close()
    if result.stopped is not None:
        raise TargetRefused(result.stopped, 0)
    return [f"publish: {line}" for line in result.lines()]
