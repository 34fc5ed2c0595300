"""The missed-schedule watchdog: WP-Cron fires only on visits, so a post scheduled for a slot may still be
`future` after it. Once a slot is PUBLISH_MISSED_GRACE_MIN past, its post is looked up: live is on time; still
scheduled is a missed schedule, published now (PUBLISH_MISSED=publish, publishing not halted) or reported;
each finding is a `schedule` line of the attempt log. While publishing is halted, the posts scheduled ahead
are taken back to draft, so a halt holds for them too (the next run after `publish resume` schedules them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from content_pipeline.publish.history import History, PostState
from content_pipeline.publish.log import AttemptLog
from content_pipeline.publish.targets import RemotePost, Target

ON_TIME = "live"
PUBLISHED = "missed: published by the watchdog"
REPORTED = "missed: still scheduled"  # the only finding looked at again: it may yet be published
GONE = "not on the target"
HALTED = "publishing halted: unscheduled"


@dataclass
class Watchdog:
    """What one look found: per finding, how many posts; a line for each that is not on time."""

    counts: Counter[str] = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)

    @property
    def missed(self) -> int:
        return self.counts[PUBLISHED] + self.counts[REPORTED]

    def line(self) -> str:
        looked = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
        return f"schedule: {looked}" if looked else "schedule: no slot passed since the last look"


def due(history: History, target: str, now: datetime, grace: timedelta) -> list[tuple[str, PostState]]:
    """The posts on `target` whose slot is `grace` past and whose going live is not settled yet."""
    return sorted(
        (
            (slug, state)
            for (where, slug), state in history.posts.items()
            if where == target
            and state.slot is not None
            and state.live_hash is not None
            and state.went_live in (None, REPORTED)
            and datetime.fromisoformat(state.slot) + grace <= now
        ),
        key=lambda pair: (str(pair[1].slot), pair[0]),
    )


def _finding(found: RemotePost | None, publish: bool) -> str:
    if found is None:
        return GONE
    if found.status == "future":
        return PUBLISHED if publish else REPORTED
    if found.status in ("publish", "delivered"):  # (a webhook's receiver publishes at the slot itself)
        return ON_TIME
    return f"{found.status} on the target (an editor's change): left alone"


def watch_schedule(
    log: AttemptLog,
    target: Target,
    history: History,
    now: datetime,
    grace: timedelta,
    why_not_publish: str | None,
) -> Watchdog:
    """Look at every post whose slot passed; publish a missed one unless `why_not_publish` (PUBLISH_MISSED=report,
    a halt) says not to. Look-ups and the publish go to `target` (a guarded one, under the publish lease)."""
    result = Watchdog()
    for slug, state in due(history, target.name, now, grace):
        found = target.find(slug, state.post_id)
        what = _finding(found, why_not_publish is None)
        if what == PUBLISHED and found is not None:
            found = target.go_live(found, slug)
        result.counts[what] += 1
        late = f"{slug}: slot {state.slot}"
        if what == REPORTED:
            result.lines.append(f"{late}: still scheduled on {target.name} (WP-Cron did not run): {why_not_publish}")
        elif what != ON_TIME:
            result.lines.append(f"{late}: {what}")
        if what != state.went_live:
            log.write("schedule", target=target.name, slug=slug, slot=state.slot, result=what, post_id=state.post_id)
    return result


def unschedule(log: AttemptLog, target: Target, history: History, now: datetime, reason: str) -> list[str]:
    """While publishing is halted: every post scheduled ahead on `target` back to draft (a take-down line each),
    so WP-Cron publishes none of them; a line for each."""
    lines = []
    for (where, slug), state in sorted(history.posts.items()):
        ahead = state.slot is not None and datetime.fromisoformat(state.slot) > now
        if where != target.name or not ahead or state.live_hash is None:
            continue
        found = target.find(slug, state.post_id)
        if found is None or found.status != "future":
            continue
        done = target.take_down(found, slug, trash=False)
        log.write(
            "takedown",
            target=where,
            slug=slug,
            result="draft",
            post_id=found.post_id,
            code=done.code,
            reason=reason,
            by="the halt",
        )
        lines.append(f"{slug}: scheduled for {state.slot}: back to draft ({HALTED})")
    return lines
