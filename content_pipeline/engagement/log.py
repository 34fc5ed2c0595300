"""The engagement log: post-days appended as signed lines, a revision only when a source's figures changed, so a
re-pull appends nothing and late data revises a day once; damaged lines named and kept aside, never trusted."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from content_pipeline.engagement.days import PostDay
from content_pipeline.errors import BadInputError
from content_pipeline.ledger.checksum import check
from content_pipeline.ledger.writer import writer_gone, writer_name
from content_pipeline.store import Store, layout


@dataclass
class EngagementLog:
    """The newest revision of every (source, post, day) in the log, when it was pulled, and the damaged lines."""

    latest: dict[tuple[str, str, str], tuple[PostDay, str]] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)  # `<object>: line N: what`, each kept in quarantine/

    def days(self) -> list[PostDay]:
        return [day for day, _ in self.latest.values()]


def _read_line(raw: bytes) -> tuple[PostDay, str] | str:
    """The day and its pull time, or what is wrong with the line."""
    problem = check(raw)
    if problem is not None:
        return problem
    try:
        body = json.loads(raw)
        body.pop("checksum")
        pulled_at = str(body.pop("pulled_at"))
        return PostDay.model_validate(body), pulled_at
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError):
        return "not an engagement line"


def read_log(store: Store, keep_damaged: bool = True) -> EngagementLog:
    """Every part of the log, the newest pull of each (source, post, day) winning; a damaged line is named
    and (with `keep_damaged`, on a store that takes writes) a copy kept in quarantine/."""
    found = EngagementLog()
    for info in store.list(layout.ENGAGEMENT_PREFIX):
        pieces = (store.get(info.key) or b"").split(b"\n")
        if pieces[-1] and not writer_gone(info.key):
            pieces[-1] = b""  # a line its live writer is still writing
        for number, raw in enumerate(pieces):
            if not raw:
                continue
            read = _read_line(raw)
            if isinstance(read, str):
                found.damaged.append(f"{info.key}: line {number + 1}: {read}")
                if keep_damaged and not store.read_only:
                    store.put_if_absent(layout.damaged_record(info.key, number), raw)
                continue
            day, pulled_at = read
            held = found.latest.get(day.key)
            if held is None or held[1] <= pulled_at:
                found.latest[day.key] = read
    return found


@dataclass
class Appended:
    """What one pull added to the log: new post-days, revised ones, and those it already held unchanged."""

    new: int = 0
    revised: int = 0
    unchanged: int = 0

    def line(self, source: str) -> str:
        return f"{source}: {self.new} new post-day(s), {self.revised} revised, {self.unchanged} unchanged"


def append_days(store: Store, source: str, days: Iterable[PostDay], log: EngagementLog | None = None) -> Appended:
    """Append the days of one pull whose figures the log does not hold yet: a day it lacks, or one whose
    figures changed since (late data: the newest revision replaces it in every view, never adds to it)."""
    days = list(days)
    strays = sorted({d.source for d in days} - {source})
    if strays:
        raise BadInputError(f"engagement from {source}: rows name another source ({', '.join(strays)})")
    held = (log or read_log(store)).latest
    counts, lines = Appended(), []
    pulled_at = datetime.now(UTC).isoformat(timespec="microseconds")
    for day in {d.key: d for d in days}.values():  # (a day given twice in one pull: its last figures)
        before = held.get(day.key)
        if before is not None and before[0].same_figures(day):
            counts.unchanged += 1
            continue
        counts.revised += before is not None
        counts.new += before is None
        lines.append(day.line(pulled_at))
    if lines:
        appender = store.appender(layout.engagement_log(source, writer_name()))
        try:
            appender.append(b"".join(lines))
        finally:
            appender.close()
    return counts
