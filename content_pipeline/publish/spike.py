"""The failure-spike watch (playbook A1): when more than PUBLISH_FAILURE_SPIKE of the live publish attempts of
the last hour failed, publishing halts itself on every worker (the halt switch), saying why, until `publish
resume`. It runs after each failed post of a publish run, and on its own every 15 minutes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from content_pipeline.publish.halt import halt, halted
from content_pipeline.publish.history import History, read_history
from content_pipeline.store import Store

WINDOW_H = 1.0
WATCH = "the failure-spike watch"  # who a spike's halt is by


@dataclass(frozen=True)
class Spike:
    """Live attempts in the window and how many failed, against the share that halts."""

    attempts: int
    failed: int
    since: datetime
    threshold: float

    @property
    def rate(self) -> float:
        return self.failed / self.attempts if self.attempts else 0.0

    def line(self) -> str:
        return (
            f"failure spike: {self.failed} of {self.attempts} live publish attempt(s) since "
            f"{self.since:%Y-%m-%d %H:%M} UTC failed ({self.rate:.0%}, over {self.threshold:.0%})"
        )


def failure_spike(history: History, threshold: float, min_attempts: int, now: datetime | None = None) -> Spike | None:
    """The spike of the last hour before `now`, or None: fewer than `min_attempts` live attempts, or a failed
    share at or under `threshold`."""
    since = (now or datetime.now(UTC)) - timedelta(hours=WINDOW_H)
    live = [e for e in history.outcomes(since, now) if e.get("live")]
    failed = sum(1 for e in live if e.get("result") == "failed")  # (a slug a human owns is no target failure)
    found = Spike(len(live), failed, since, threshold)
    return found if len(live) >= min_attempts and found.rate > threshold else None


@dataclass(frozen=True)
class Watched:
    """What a look found: the spike (None: none), and whether this look halted publishing."""

    spike: Spike | None
    halted_now: bool
    halted_before: str | None

    def line(self) -> str:
        if self.halted_now and self.spike is not None:
            return f"publishing halted: {self.spike.line()}; `content-pipeline publish resume` lifts it"
        if self.halted_before is not None:
            return f"publishing is halted: {self.halted_before}"
        return "no failure spike in the last hour"


def watch(store: Store, threshold: float, min_attempts: int, now: datetime | None = None) -> Watched:
    """Halt publishing when the last hour's live attempts show a spike (unless it is halted already)."""
    before = halted(store)
    spike = failure_spike(read_history(store, keep_damaged=False), threshold, min_attempts, now)
    if spike is None or before is not None:
        return Watched(spike, False, before)
    halt(store, spike.line(), WATCH)
    return Watched(spike, True, None)
