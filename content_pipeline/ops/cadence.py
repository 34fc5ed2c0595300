"""Posts per UTC day against the posting plan (the SLO: at most ±1 post a day from plan) and missed schedules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from content_pipeline.posting_plan import PostingPlan
from content_pipeline.publish.history import History
from content_pipeline.publish.log import SUCCESS
from content_pipeline.publish.watchdog import PUBLISHED, REPORTED

TOLERANCE = 1  # posts a day may be off the plan (the runbook's SLO)
FLAG = f"over ±{TOLERANCE}"
OPEN = "open (so far)"
NO_PLAN = "no PUBLISH_PLAN is set: posts per day only, nothing to compare them with"
HOW = (
    "UTC days, the first from its midnight; a post counts once per target, on the day it went live (its slot's day "
    "when it was scheduled); updates do not count again. The day the report ends in is open: counted up to the "
    "report's end (slots planned so far), not flagged."
)


@dataclass(frozen=True)
class CadenceDay:
    """One UTC day: the posts that went live, the plan's slots (None: no plan), and whether the day is still open."""

    day: date
    live: int
    planned: int | None
    open: bool = False

    @property
    def variance(self) -> int | None:
        return None if self.planned is None else self.live - self.planned

    @property
    def flagged(self) -> bool:
        return not self.open and self.variance is not None and abs(self.variance) > TOLERANCE

    def row(self) -> dict[str, str]:
        variance = "-" if self.variance is None else (f"{self.variance:+d}" if self.variance else "0")
        flag = FLAG if self.flagged else (OPEN if self.open else "")
        planned = "-" if self.planned is None else str(self.planned)
        return {
            "day": self.day.isoformat(),
            "live": str(self.live),
            "planned": planned,
            "variance": variance,
            "flag": flag,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "live": self.live,
            "planned": self.planned,
            "variance": self.variance,
            "flagged": self.flagged,
            "open": self.open,
        }


@dataclass
class Cadence:
    """A period's posts per day against the plan (`plan`: how PUBLISH_PLAN reads, None when unset), and its
    missed schedules: slots whose post the watchdog found still scheduled, and how many of those it published."""

    plan: str | None
    per_day: int | None
    days: list[CadenceDay] = field(default_factory=list)
    missed: int = 0
    missed_published: int = 0

    @property
    def flagged(self) -> list[CadenceDay]:
        return [d for d in self.days if d.flagged]

    def heading(self) -> str:
        if self.plan is None:
            return "Posting plan (none set)"
        return f"Posting plan ({self.plan}: {self.per_day} a day; SLO ±{TOLERANCE} post a day)"

    def rows(self) -> list[dict[str, str]]:
        return [d.row() for d in self.days]

    def notes(self) -> list[str]:
        """The verdict and the missed schedules, a line each (no plan: a line saying so)."""
        if self.plan is None:
            lines = [NO_PLAN]
        else:
            over = len(self.flagged)
            lines = [f"{over} day(s) {FLAG} post from plan" if over else f"every closed day within ±{TOLERANCE}"]
        still = self.missed - self.missed_published
        lines.append(
            f"missed schedules: {self.missed} ({self.missed_published} published by the watchdog, {still} reported)"
        )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "per_day": self.per_day,
            "tolerance": TOLERANCE,
            "days": [d.to_dict() for d in self.days],
            "flagged_days": len(self.flagged),
            "missed": self.missed,
            "missed_published": self.missed_published,
        }


def _moment(text: Any) -> datetime:
    return datetime.fromisoformat(str(text))


def went_live(history: History, end: datetime) -> list[datetime]:
    """When each post went live, once per target and slug, from the lines up to `end`: a scheduled post at its
    slot, else at its outcome. A post taken down before its slot came (a halt's unscheduling) had not gone live."""
    moments: dict[tuple[str, str], datetime] = {}
    live: set[tuple[str, str]] = set()
    for entry in history.lines:
        at, key = _moment(entry["at"]), (str(entry.get("target", "")), str(entry.get("slug", "")))
        if at > end:
            break
        if entry["kind"] == "outcome" and entry.get("live") and entry.get("result") in SUCCESS:
            if key not in live and key not in moments:
                moments[key] = _moment(entry["slot"]) if entry.get("slot") else at
            live.add(key)
        elif entry["kind"] == "takedown" and entry.get("result") in ("draft", "trash"):
            live.discard(key)
            if key in moments and moments[key] > at:
                del moments[key]
    return list(moments.values())


def missed_schedules(history: History, start: datetime, end: datetime) -> tuple[int, int]:
    """The missed schedules whose slot is in [start, end), each target, slug and slot once; and how many of
    those the watchdog published."""
    missed: dict[tuple[str, str, str], bool] = {}
    for entry in history.lines:
        if entry["kind"] != "schedule" or entry.get("result") not in (PUBLISHED, REPORTED) or not entry.get("slot"):
            continue
        if _moment(entry["at"]) > end or not start <= _moment(entry["slot"]) < end:
            continue
        key = (str(entry.get("target", "")), str(entry.get("slug", "")), str(entry["slot"]))
        missed[key] = missed.get(key, False) or entry["result"] == PUBLISHED
    return len(missed), sum(missed.values())


def cadence(history: History, plan: PostingPlan | None, start: datetime, end: datetime) -> Cadence:
    """Per UTC day from `start`'s (whole, from its midnight) to `end`'s (open: counted up to `end`): the posts
    that went live and the slots `plan` has; and the missed schedules of those days."""
    first = datetime.combine(start.astimezone(UTC).date(), time(0), tzinfo=UTC)
    per_day: dict[date, int] = {}
    for moment in went_live(history, end):
        if first <= moment < end:
            per_day[moment.astimezone(UTC).date()] = per_day.get(moment.astimezone(UTC).date(), 0) + 1
    found = Cadence(None if plan is None else plan.shown(), None if plan is None else plan.per_day)
    day = first
    while day < end:
        until = min(day + timedelta(days=1), end)
        planned = None if plan is None else len(plan.slots(day, until))
        found.days.append(
            CadenceDay(day.date(), per_day.get(day.date(), 0), planned, open=until < day + timedelta(days=1))
        )
        day += timedelta(days=1)
    found.missed, found.missed_published = missed_schedules(history, first, end)
    return found
