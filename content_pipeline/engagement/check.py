"""The drop check of health and of `engagement drops`: every source's newest complete day against its baseline,
for each count it reports, overall and by template, category and slot; red when anything fell past the alert."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import polars as pl

from content_pipeline.configs import EngagementConfig
from content_pipeline.engagement.drops import Drop, complete_days, detect_drops
from content_pipeline.engagement.log import read_log
from content_pipeline.engagement.segments import store_segments
from content_pipeline.engagement.views import post_days
from content_pipeline.store import Store

WATCHED = ("visitors", "pageviews", "clicks", "impressions")  # the counts a drop is looked for in
STALE_DAYS = 5  # a source whose newest complete day is older than this: its pull (or its tracking) stopped


@dataclass
class DropCheck:
    """What the check found: the drops, each source's newest complete day, the sources gone quiet (no complete
    day for STALE_DAYS), and damaged log lines."""

    drops: list[Drop] = field(default_factory=list)
    newest: dict[str, date] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    alert: float = 0.3

    @property
    def level(self) -> Literal["green", "amber", "red"]:
        return "red" if self.drops else ("amber" if self.damaged or self.stale else "green")

    def line(self) -> str:
        """One line: the worst drop and how many more, or what was compared; then what else is wrong."""
        kept = "".join(f"; {s}" for s in self.stale)
        kept += f"; {len(self.damaged)} damaged engagement line(s) kept aside in quarantine/" if self.damaged else ""
        if not self.newest:
            return "no complete day of engagement figures yet" + kept
        if self.drops:
            worst = min(self.drops, key=lambda d: d.change)
            more = f" (and {len(self.drops) - 1} more)" if len(self.drops) > 1 else ""
            return f"down past {self.alert:.0%}: {worst.line()}{more}{kept}"
        days = ", ".join(f"{source} {day}" for source, day in sorted(self.newest.items()))
        return f"no drop past {self.alert:.0%} on the newest complete day ({days}){kept}"

    def lines(self) -> list[str]:
        return [self.line(), *(d.line() for d in self.drops[1:] if len(self.drops) > 1)]

    def rows(self) -> list[dict[str, str]]:
        """The drops as table rows: source, metric, segment, day, value, baseline, change."""
        return [
            {
                "source": d.source,
                "metric": d.metric,
                "segment": d.segment,
                "day": d.day.isoformat(),
                "value": f"{d.value:g}",
                "baseline": f"{d.baseline:g}",
                "change": f"{d.change:+.0%}",
            }
            for d in self.drops
        ]


def drop_check(store: Store, config: EngagementConfig) -> DropCheck:
    """The drops of every watched count on each source's newest complete day (a day inside a source's lag is
    never compared; a baseline under ENGAGEMENT_MIN_BASELINE is never called a drop)."""
    log = read_log(store, keep_damaged=not store.read_only)
    found = DropCheck(damaged=log.damaged, alert=config.engagement_drop_alert)
    frame = post_days(log.days())
    if frame.is_empty():
        return found
    today = datetime.now(UTC).date()
    for (source,), part in frame.group_by(["source"]):
        days = complete_days(part)
        if days:
            found.newest[str(source)] = days[-1]
        if not days or days[-1] < today - timedelta(days=STALE_DAYS):
            since = f"since {days[-1]}" if days else "at all"
            found.stale.append(f"{source}: no complete day {since}: is its pull, or its tracking, stopped?")
    segments = store_segments(store)
    for metric in WATCHED:
        found.drops += detect_drops(
            frame.filter(pl.col(metric).is_not_null()),
            metric,
            threshold=config.engagement_drop_alert,
            min_baseline=config.engagement_min_baseline,
            how=config.engagement_baseline,
            segments=segments,
        )
    found.drops.sort(key=lambda d: d.change)
    return found
