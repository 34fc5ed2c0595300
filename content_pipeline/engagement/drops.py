"""Drop detection: a source's newest complete day (every post's figures final) against its baseline, the median
of the 7 complete days before it or the same weekday a week before; a drop past the threshold is named, overall
and by segment (template, category, slot), unless the baseline is too small to mean anything."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import polars as pl

Baseline = Literal["median7", "weekday"]
ALL = "all posts"


@dataclass(frozen=True)
class Drop:
    """One metric of one source fallen on its newest complete day, against its baseline."""

    source: str
    metric: str
    segment: str
    day: date
    value: float
    baseline: float

    @property
    def change(self) -> float:
        return (self.value - self.baseline) / self.baseline

    def line(self) -> str:
        return (
            f"{self.source} {self.metric} of {self.segment} on {self.day}: {self.value:g} against {self.baseline:g} "
            f"({self.change:+.0%})"
        )


def complete_days(frame: pl.DataFrame) -> list[date]:
    """The days of one source's frame whose every row is final, oldest first."""
    days = frame.group_by("day").agg(pl.col("final").all().alias("complete"))
    return sorted(days.filter(pl.col("complete"))["day"].to_list())


def _baseline(totals: Mapping[date, float], day: date, how: Baseline) -> float | None:
    if how == "weekday":
        return totals.get(day - timedelta(days=7))
    before = [totals[d] for d in (day - timedelta(days=n) for n in range(1, 8)) if d in totals]
    return statistics.median(before) if len(before) >= 4 else None  # (fewer than 4 of the 7: no baseline yet)


def _drop(
    frame: pl.DataFrame, source: str, metric: str, segment: str, days: list[date], rule: tuple[Baseline, float, float]
) -> Drop | None:
    how, threshold, min_baseline = rule
    sums = frame.filter(pl.col("day").is_in(days)).group_by("day").agg(pl.col(metric).sum())
    totals = {d: float(v or 0.0) for d, v in sums.iter_rows()}
    day = days[-1]
    baseline = _baseline(totals, day, how)
    if baseline is None or baseline < min_baseline:
        return None  # too little to tell a drop from noise
    value = totals.get(day, 0.0)
    found = Drop(source, metric, segment, day, value, baseline)
    return found if found.change <= -threshold else None


def detect_drops(
    posts: pl.DataFrame,
    metric: str,
    *,
    threshold: float = 0.3,
    min_baseline: float = 50.0,
    how: Baseline = "median7",
    segments: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Drop]:
    """The drops of `metric` on each source's newest complete day (`posts`: post_days' frame): overall, and
    for each value of each segmentation in `segments` (name -> slug -> value, e.g. "template" -> slug ->
    "catalogue-item v2"). A day some post's figures are not final for yet is never compared."""
    found: list[Drop] = []
    rule = (how, threshold, min_baseline)
    for (source,), frame in posts.filter(pl.col(metric).is_not_null()).group_by(["source"]):
        days = complete_days(frame)
        if not days:
            continue
        found += [d for d in [_drop(frame, str(source), metric, ALL, days, rule)] if d is not None]
        for name, of in (segments or {}).items():
            labelled = frame.with_columns(pl.col("slug").replace_strict(dict(of), default=None).alias("segment"))
            for (value,), part in labelled.filter(pl.col("segment").is_not_null()).group_by(["segment"]):
                drop = _drop(part, str(source), metric, f"{name} {value}", days, rule)
                found += [drop] if drop is not None else []
    return sorted(found, key=lambda d: (d.source, d.segment != ALL, d.change))
