"""The publishing SLO: at least 98% of live publish attempts in the last 24 hours succeed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from content_pipeline.publish.history import History
from content_pipeline.publish.log import SUCCESS

SLO = 0.98
WINDOW_H = 24.0


@dataclass(frozen=True)
class PublishSLO:
    """Live attempts in the window, how many succeeded, and the rate against the SLO."""

    attempts: int
    succeeded: int
    since: datetime

    @property
    def rate(self) -> float | None:
        return self.succeeded / self.attempts if self.attempts else None

    @property
    def met(self) -> bool:
        return self.rate is None or self.rate >= SLO

    def line(self) -> str:
        if self.rate is None:
            return f"no live publish attempt in the last {WINDOW_H:g} h"
        verdict = "meets" if self.met else "below"
        return (
            f"{self.rate:.1%} of {self.attempts} live publish attempt(s) in the last {WINDOW_H:g} h succeeded "
            f"({verdict} the {SLO:.0%} SLO)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "succeeded": self.succeeded, "rate": self.rate, "slo": SLO, "met": self.met}


def publish_slo(history: History, end: datetime | None = None, hours: float = WINDOW_H) -> PublishSLO:
    """The SLO over the `hours` before `end` (now)."""
    since = (end or datetime.now(UTC)) - timedelta(hours=hours)
    live = [e for e in history.outcomes(since, end) if e.get("live")]
    return PublishSLO(len(live), sum(1 for e in live if e.get("result") in SUCCESS), since)


def publish_figures(history: History, start: datetime, end: datetime) -> dict[str, Any]:
    """A report period's publishing: live attempts, successes, failures, simulations, and the success rate
    against the SLO."""
    chosen = history.outcomes(start, end)
    live = [e for e in chosen if e.get("live")]
    done = sum(1 for e in live if e.get("result") in SUCCESS)
    rate = done / len(live) if live else None
    return {
        "live_attempts": len(live),
        "published": done,
        "failed": len(live) - done,
        "simulated": sum(1 for e in chosen if e.get("result") == "simulated"),
        "success_rate": rate,
        "slo": SLO,
        "slo_met": rate is None or rate >= SLO,
    }
