"""The reward samples template-rank compares: per template version, one value per post (its click-through or
metric over its first days, from the engagement log), or per item its QA verdict (TEMPLATE_REWARD=qa_pass)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from content_pipeline.configs import EngagementConfig
from content_pipeline.engagement.log import read_log
from content_pipeline.engagement.published import published
from content_pipeline.engagement.reward import post_rewards
from content_pipeline.engagement.segments import template_keys
from content_pipeline.engagement.views import post_days
from content_pipeline.ops.outcomes import outcomes
from content_pipeline.ops.qa_evidence import qa_decided
from content_pipeline.store import Store


def _grouped(frame: pl.DataFrame) -> dict[str, list[float]]:
    by = frame.group_by("template").agg(pl.col("reward"))
    return {str(t): [float(v) for v in values] for t, values in by.iter_rows()}


def rewards_by_template(
    store: Store, config: EngagementConfig, as_of: date, qa_units: bool = False
) -> dict[str, list[float]]:
    """Each template version's rewards known at the end of `as_of`: per post of the engagement log (posts the
    master successes do not name are left out), or with `qa_units` per item QA decided, 1 passed, 0 not."""
    if qa_units:
        end = datetime.combine(as_of + timedelta(days=1), time(), UTC)
        decided = qa_decided(outcomes(store, until=end).frame)
        return _grouped(decided.select("template", reward=pl.col("passed").cast(pl.Float64)))
    posts = published(store)
    first_live = {slug: at.date() for slug, at in posts.first_live.items()}
    rewards = post_rewards(
        post_days(read_log(store, keep_damaged=False).days()),
        config.template_reward,
        config.template_reward_days,
        first_live,
        as_of,
    )
    keys = template_keys(store)
    named = rewards.filter(pl.col("slug").is_in(list(keys)))
    return _grouped(named.with_columns(template=pl.col("slug").replace_strict(keys, default=None)))
