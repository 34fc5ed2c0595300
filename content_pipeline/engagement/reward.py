"""Each post's reward for template-rank: its click-through (clicks per impression) or one metric over the first
N days after it went live, counted only once all N days are complete, so a post's reward never changes after it
is first counted (the sample only grows, as a sequential test needs)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import polars as pl

from content_pipeline.engagement.views import COUNTS, first_source

REWARD_SCHEMA = {"slug": pl.String(), "reward": pl.Float64(), "first_day": pl.Date()}


def needs(reward: str) -> tuple[str, ...]:
    """The metrics a reward is made of."""
    return ("clicks", "impressions") if reward == "ctr" else (reward,)


def _complete_until(frame: pl.DataFrame, as_of: date) -> date | None:
    """The last day up to which every row is final (the day before the first one that is not), at most `as_of`."""
    upto = frame.filter(pl.col("day") <= as_of)
    if upto.is_empty():
        return None
    open_days = upto.filter(~pl.col("final"))["day"]
    if len(open_days):
        first_open: date = open_days.min()  # type: ignore[assignment]
        return first_open - timedelta(days=1)
    newest: date = upto["day"].max()  # type: ignore[assignment]
    return newest


def _aggregate(reward: str) -> pl.Expr:
    if reward == "ctr":
        return (pl.col("clicks").sum() / pl.col("impressions").sum()).alias("reward")
    return (pl.col(reward).sum() if reward in COUNTS else pl.col(reward).mean()).alias("reward")


def post_rewards(
    posts: pl.DataFrame, reward: str, window_days: int, first_live: Mapping[str, date], as_of: date
) -> pl.DataFrame:
    """slug, reward and first_day of every post whose first `window_days` days (from the day it went live, else
    its first day in the figures) are complete by `as_of`. A day with no row counts as nothing happened (Search
    Console lists no day without an impression); a post with no impression has no click-through."""
    frame = first_source(posts, [needs(reward)]).drop_nulls(needs(reward))
    cut = _complete_until(frame, as_of)
    if cut is None:
        return pl.DataFrame(schema=REWARD_SCHEMA)
    starts = frame.group_by("slug").agg(pl.col("day").min().alias("seen"))
    live = pl.DataFrame(
        {"slug": list(first_live), "live": list(first_live.values())}, schema={"slug": pl.String(), "live": pl.Date()}
    )
    starts = starts.join(live, on="slug", how="left").select("slug", pl.coalesce("live", "seen").alias("first_day"))
    last = pl.col("first_day") + pl.duration(days=window_days - 1)
    counted = starts.filter(last <= cut)
    window = frame.join(counted, on="slug").filter(pl.col("day").is_between(pl.col("first_day"), last))
    rewards = window.group_by("slug", "first_day").agg(_aggregate(reward))
    if reward == "ctr":
        rewards = rewards.filter(pl.col("reward").is_finite())
    elif reward in COUNTS:  # a live post no reader came to: its count is 0, not unknown
        quiet = live.filter(
            ~pl.col("slug").is_in(starts["slug"].implode())
            & (pl.col("live") + pl.duration(days=window_days - 1) <= cut)
        )
        rewards = pl.concat(
            [rewards, quiet.select("slug", pl.col("live").alias("first_day"), reward=pl.lit(0.0))], how="diagonal"
        )
    return rewards.select("slug", "reward", "first_day").sort("slug")
