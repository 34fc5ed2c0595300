"""A publish run: the plan, the governance decision, then each post simulated or sent live: its idempotency
key recorded before the call, the post looked up on the target before any create, the outcome after it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from content_pipeline.publish.governance import Approval, Decision, decide
from content_pipeline.publish.holds import hold_entry
from content_pipeline.publish.log import AttemptLog, now
from content_pipeline.publish.plan import Candidate, Plan
from content_pipeline.publish.retry import Retried, with_retries
from content_pipeline.publish.targets import (
    RemotePost,
    SlugConflict,
    Target,
    TargetFailed,
    TargetRefused,
    TargetUnavailable,
)
from content_pipeline.publish.window import gates
from content_pipeline.store import Store

FOUND = {  # the note of a post the log did not know, found on the target (a crash, a restored store)
    "updated": ("found on the target (an earlier attempt's post): updated, not created again",),
    "unchanged": ("found on the target with this content (an earlier attempt's post): not sent again",),
}


@dataclass
class PublishResult:
    """What one publish run did, post by post counted, with the line of each failure."""

    target: str
    decision: Decision
    plan: Plan
    dry_run: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: str | None = None  # the target refused us (401, 403): the run stopped here
    halted_itself: str | None = None  # its failures made a spike: publishing halted everywhere

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.failures and self.halted_itself is None

    def lines(self) -> list[str]:
        p = self.plan
        done = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items())) or "nothing sent"
        head = f"to {self.target}{' (dry run)' if self.dry_run else ''}: {self.decision.reason}"
        left = f"{p.published} already live, {p.quarantined} quarantined held back, {p.over_limit} over the limit"
        left += f", {len(p.held)} held by the quality gate" if p.held else ""
        left += f", {p.waiting} waiting for a slot of the posting plan" if p.waiting else ""
        held = [f"{slug}: held by the quality gate: {why}" for slug, why in p.held]
        if self.dry_run and p.slots:  # what the posting plan would schedule
            held += [f"{c.post.slug}: for the slot {c.slot:%Y-%m-%d %H:%M} UTC" for c in p.candidates if c.slot]
        return (
            [head, f"{len(p.candidates)} planned: {done}; {left}", *held, *self.notes, *self.failures]
            + ([f"stopped: {self.stopped}"] if self.stopped else [])
            + ([self.halted_itself] if self.halted_itself else [])
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "live": self.decision.live,
            "reason": self.decision.reason,
            "planned": len(self.plan.candidates),
            "held": [{"slug": slug, "why": why} for slug, why in self.plan.held],
            "waiting_for_a_slot": self.plan.waiting,
            "counts": dict(self.counts),
            "failures": self.failures,
            "stopped": self.stopped,
            "halted_itself": self.halted_itself,
            "dry_run": self.dry_run,
        }


def _unchanged(found: RemotePost, cand: Candidate) -> bool:
    """The post on the target is marked with this very content's key, and is neither in the trash nor one
    the log says we took down (a released item goes back up): nothing to send. So a store restored from
    an older backup re-sends nothing already live, and an editor's later edits of it are kept."""
    return found.key == cand.key and found.status != "trash" and cand.state.taken_down is None


def _send(
    target: Target, cand: Candidate, max_retries: int, sleep: Callable[[float], None]
) -> tuple[str, RemotePost, int]:
    """Look the post up (by its stored id, then by slug or marker), then leave it (same content), update it
    or create it; retried whole, so a create whose answer was lost is found by the retry's look-up and never
    made twice. A slug held by a post the pipeline did not make raises SlugConflict, at once."""
    retried = Retried()

    def once() -> tuple[str, RemotePost]:
        found = target.find(cand.post.slug, cand.state.post_id)
        if found is None:
            return "created", target.create(cand.post, cand.key, cand.slot)
        if _unchanged(found, cand):
            return "unchanged", found
        return "updated", target.update(found, cand.post, cand.key, cand.slot)

    result, remote = with_retries(once, max_retries, retried, sleep)
    return result, remote, retried.count


@dataclass(frozen=True)
class _Run:
    """What every post of one run shares: the UI approval's record, the retry bound, the sleep."""

    approval: dict[str, Any] | None
    max_retries: int
    sleep: Callable[[float], None]


def _live(
    log: AttemptLog, target: Target, cand: Candidate, decision: Decision, run: _Run, result: PublishResult
) -> None:
    slug, fields = cand.post.slug, {"key": cand.key, "target": target.name, "slug": cand.post.slug}
    fields |= {
        "content_hash": cand.post.content_hash,
        "live": True,
        "reason": decision.reason,
        "approval": run.approval,
        "slot": cand.slot.isoformat() if cand.slot else None,
    }
    log.write("intent", **fields, payload=cand.post.payload())
    started = now()
    try:
        what, remote, retries = _send(target, cand, run.max_retries, run.sleep)
    except SlugConflict as exc:  # the foreign post's id goes under its own name: never taken for ours
        log.write(
            "outcome",
            **fields,
            result="conflict",
            code=exc.code,
            conflict_post_id=exc.post_id,
            conflict_author=exc.author,
            error=str(exc)[:300],
            started_at=started,
        )
        result.counts["slug conflict"] += 1
        result.failures.append(f"{slug}: {exc}")
        return
    except (TargetUnavailable, TargetFailed, TargetRefused) as exc:
        code = getattr(exc, "code", None)
        log.write("outcome", **fields, result="failed", code=code, error=str(exc)[:300], started_at=started)
        result.counts["failed"] += 1
        if isinstance(exc, TargetRefused):
            result.stopped = str(exc)
            raise
        result.failures.append(f"{slug}: {exc}")
        return
    found_note = FOUND.get(what, ()) if cand.state.post_id is None else ()
    notes = list(remote.notes + found_note)
    log.write(
        "outcome",
        **fields,
        result=what,
        code=remote.code,
        post_id=remote.post_id,
        remote_slug=remote.slug,
        link=remote.link,
        status=remote.status,
        retries=retries,
        notes=notes,
        started_at=started,
    )
    result.counts[what] += 1
    result.notes += [f"{slug}: {note}" for note in notes]


def _check(target: Target, result: PublishResult, run: _Run) -> None:
    """The target's check before the first live call (retried as a call is); a target that refuses us or
    cannot be reached stops the run before any post."""
    try:
        said = with_retries(target.check, run.max_retries, Retried(), run.sleep)
        result.notes += list(said or ())  # what the target says once (e.g. WordPress without the marker plugin)
    except (TargetRefused, TargetUnavailable, TargetFailed) as exc:
        result.stopped = str(exc)
        raise TargetRefused(str(exc), getattr(exc, "code", None) or 0) from None


def publish_run(
    store: Store,
    target: Target,
    signals: Mapping[str, object],
    the_plan: Plan,
    run_id: str,
    *,
    max_retries: int = 4,
    approval: Approval | None = None,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    guard: Callable[[], None] | None = None,
    on_failure: Callable[[], str | None] | None = None,
) -> PublishResult:
    """Send (or simulate) every post of `the_plan`. The halt switch and each item's quarantine are read again
    before each post, so an operator's halt on any worker holds from the next post on. With a UI approval,
    only the posts the approver was shown go live. 401 or 403 stops the run (TargetRefused, recorded). After
    each failed post, `on_failure` looks for a failure spike (the line of the halt it made, or None)."""
    result = PublishResult(target.name, decide(signals, approval, gates(store)), the_plan, dry_run)
    if dry_run:
        result.counts["would go live" if result.decision.live else "would be simulated"] = len(the_plan.candidates)
        return result
    shown = set(approval.shown) if approval is not None else None
    run = _Run(approval.record() if approval else None, max_retries, sleep)
    log = AttemptLog(store, run_id, guard=guard)
    checked = False
    try:
        for cand in the_plan.candidates:
            if hold_entry(store, cand.post.slug) is not None:
                result.counts["quarantined meanwhile"] += 1
                continue
            decision = decide(signals, approval, gates(store))
            if decision.live and shown is not None and f"{cand.post.slug}:{cand.post.content_hash}" not in shown:
                decision = Decision(False, ("PUBLISH_APPROVAL_GRANTED",), None, approval)
                result.notes.append(f"{cand.post.slug}: not among the posts the approver was shown: simulated")
            if decision.live:
                if not checked:
                    _check(target, result, run)
                    checked = True
                failed = result.counts["failed"]
                _live(log, target, cand, decision, run, result)
                if result.counts["failed"] > failed and on_failure is not None and result.halted_itself is None:
                    result.halted_itself = on_failure()
                continue
            log.write(
                "outcome",
                key=cand.key,
                target=target.name,
                slug=cand.post.slug,
                content_hash=cand.post.content_hash,
                live=False,
                result="simulated",
                reason=decision.reason,
                approval=run.approval,
                slot=cand.slot.isoformat() if cand.slot else None,
                payload=cand.post.payload(),
            )
            result.counts["simulated"] += 1
    except TargetRefused:
        pass
    finally:
        log.close()
    return result
