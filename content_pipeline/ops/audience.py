"""What readers did in a KPI report's period and the prior: overall, by template, category and slot, per day."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from content_pipeline.engagement.log import read_log
from content_pipeline.engagement.segments import Segments, store_segments
from content_pipeline.engagement.views import first_source, post_days
from content_pipeline.store import Store

COUNTED = ("visitors", "pageviews", "clicks", "impressions")  # summed over posts and days
AVERAGED = "time_on_page"  # the mean over the post-days that report it
SEGMENTATIONS = ("template", "category", "slot")
UNKNOWN = "(not known)"  # the segment of a post a segmentation cannot place


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


@dataclass(frozen=True)
class Audience:
    """One period's audience (a count is None when no source reports it at all; 0 when none came), and the
    same figures by segmentation (template, category, slot) -> segment value."""

    visitors: float | int | None = None
    pageviews: float | int | None = None
    clicks: float | int | None = None
    impressions: float | int | None = None
    time_on_page: float | None = None  # mean seconds over the post-days that report it
    posts: int = 0  # posts with figures in the period
    provisional: int = 0  # post-days whose figures are not final yet (inside a source's lag)
    by: dict[str, dict[str, Audience]] = field(default_factory=dict)

    @property
    def ctr(self) -> float | None:
        """Clicks per impression."""
        return self.clicks / self.impressions if self.clicks is not None and self.impressions else None

    def headline(self) -> dict[str, float | int | None]:
        """The figures compared with the prior period, by name."""
        counts: dict[str, float | int | None] = {m: getattr(self, m) for m in COUNTED}
        return {**counts, "ctr": self.ctr, AVERAGED: self.time_on_page}

    def to_dict(self) -> dict[str, Any]:
        by = {name: {value: part.to_dict() for value, part in of.items()} for name, of in self.by.items()}
        return {**self.headline(), "posts": self.posts, "provisional": self.provisional} | ({"by": by} if by else {})


def _totals(frame: pl.DataFrame, known: set[str]) -> Audience:
    """The audience of some post-days (first_source's rows); `known`: the counts some source reports."""
    counts = {m: _number(float(frame[m].sum())) if m in known else None for m in COUNTED}
    reported = frame[AVERAGED].drop_nulls()
    return Audience(
        **counts,
        time_on_page=float(reported.mean()) if len(reported) else None,
        posts=frame["slug"].n_unique(),
        provisional=int((~frame["final"]).sum()),
    )


def _period(frame: pl.DataFrame, known: set[str], values: dict[str, list[str]]) -> Audience:
    """One period's totals, and each segment's (every value either period has, so both show the same rows)."""
    by = {name: {v: _totals(frame.filter(pl.col(name) == v), known) for v in of} for name, of in values.items()}
    return replace(_totals(frame, known), by=by)


def day_grid(first: date, end: date) -> pl.DataFrame:
    """A `day` column of every UTC day from `first` up to `end`, `end` left out (kpis.per_day's dates)."""
    days = pl.date_range(first, end - timedelta(days=1), "1d", eager=True) if end > first else []
    return pl.DataFrame({"day": days}, schema={"day": pl.Date()})


def per_day(posts: pl.DataFrame, first: date, end: date, known: set[str]) -> pl.DataFrame:
    """day and each count summed over posts, for every day from `first` up to `end` (0 on a day without
    figures; null throughout for a count no source reports)."""
    sums = posts.group_by("day").agg(*(pl.col(m).sum() for m in COUNTED))
    out = day_grid(first, end).join(sums, on="day", how="left")
    return out.with_columns(
        *(pl.col(m).fill_null(0.0) if m in known else pl.lit(None, pl.Float64).alias(m) for m in COUNTED)
    ).sort("day")


@dataclass
class AudienceFigures:
    """A KPI report's audience: this period's and the prior's, the days charted (both periods), this period's
    first day, the newest day the log has figures for (None: no figures at all), and notes for the reader."""

    current: Audience
    prior: Audience
    days: pl.DataFrame
    start: date
    newest: date | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.newest is None

    def span(self) -> str:
        """The days of each period: `this period 2026-11-19 to 2026-11-25, the prior 2026-11-12 to 2026-11-18`."""
        days, before = self.days["day"], self.start - timedelta(days=1)
        return f"this period {self.start} to {days[-1]}, the prior {days[0]} to {before}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.to_dict(),
            "prior": self.prior.to_dict(),
            "newest_day": None if self.newest is None else self.newest.isoformat(),
            "notes": self.notes,
        }


def _labelled(posts: pl.DataFrame, segments: Segments) -> pl.DataFrame:
    """The post-days with a column per segmentation: the post's segment, UNKNOWN where it cannot be placed."""
    return posts.with_columns(
        pl.col("slug").replace_strict(of, default=UNKNOWN, return_dtype=pl.String()).alias(name)
        for name, of in segments.items()
    )


def audience(
    store: Store,
    start: datetime,
    end: datetime,
    prior_start: datetime,
) -> AudienceFigures:
    """The audience of the days from `start` up to `end` (UTC dates, `end`'s own day left out) and of those
    from `prior_start` up to `start`, from the engagement log; each post's segments from the store."""
    log = read_log(store, keep_damaged=not store.read_only)
    notes = [f"{len(log.damaged)} damaged engagement line(s) left out"] if log.damaged else []
    first, middle, last = prior_start.date(), start.date(), end.date()
    posts = first_source(post_days(log.days()))
    if posts.is_empty():
        return AudienceFigures(Audience(), Audience(), per_day(posts, first, last, set()), middle, notes=notes)
    known = {m for m in COUNTED if posts[m].is_not_null().any()}
    segments = store_segments(store)
    both = _labelled(posts.filter(pl.col("day").is_between(first, last, closed="left")), segments)
    values = {n: sorted(both[n].unique(), key=lambda v: (v == UNKNOWN, v)) for n in SEGMENTATIONS if n in segments}
    current = _period(both.filter(pl.col("day") >= middle), known, values)
    prior = _period(both.filter(pl.col("day") < middle), known, values)
    newest: date = posts["day"].max()
    return AudienceFigures(current, prior, per_day(both, first, last, known), middle, newest, notes)
