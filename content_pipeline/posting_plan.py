"""The posting plan (PUBLISH_PLAN): the day's time slots in a timezone, e.g. `09:00,13:00,17:00 Europe/Berlin`,
and the slots it has between two moments, in UTC (a slot a daylight-saving change skips or repeats is there
once, at the time the zone gives it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
HORIZON = timedelta(hours=24)  # how far ahead a publish run fills the plan's slots


@dataclass(frozen=True)
class PostingPlan:
    """Posts per day, each at one of `times` (local to `zone`)."""

    times: tuple[time, ...]
    zone: str = "UTC"

    @property
    def per_day(self) -> int:
        return len(self.times)

    def slots(self, start: datetime, end: datetime) -> list[datetime]:
        """The plan's slots at or after `start` and before `end`, in UTC, oldest first."""
        zone = ZoneInfo(self.zone)
        first = start.astimezone(zone).date() - timedelta(days=1)
        days = (end - start).days + 3
        found = {
            datetime.combine(first + timedelta(days=d), t, tzinfo=zone).astimezone(UTC)
            for d in range(days)
            for t in self.times
        }
        return sorted(s for s in found if start <= s < end)

    def ahead(self, now: datetime) -> list[datetime]:
        """The slots of the next 24 hours: those a publish run fills."""
        return self.slots(now, now + HORIZON)

    def shown(self) -> str:
        return f"{', '.join(f'{t:%H:%M}' for t in self.times)} {self.zone}"


def parse_plan(text: str) -> PostingPlan | None:
    """PUBLISH_PLAN's value as a plan (None when empty): comma-separated HH:MM times, then an optional IANA
    timezone (UTC when none). ValueError names what is wrong."""
    text = text.strip()
    if not text:
        return None
    clock, _, zone = text.partition(" ")
    zone = zone.strip() or "UTC"
    times = []
    for piece in clock.split(","):
        found = _TIME.match(piece.strip())
        if found is None:
            raise ValueError(f"{piece.strip()!r} is not a time of day (HH:MM); write e.g. 09:00,13:00 Europe/Berlin")
        times.append(time(int(found[1]), int(found[2])))
    if len(set(times)) < len(times):
        raise ValueError("a time of day is given twice")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{zone!r} is not a known timezone (an IANA name such as Europe/Berlin)") from None
    return PostingPlan(tuple(sorted(times)), zone)
