"""Engagement as views: each post's figures per source and day (the newest revision), and summed per template
version and day with the post as the unit."""

from __future__ import annotations

import polars as pl

from content_pipeline.engagement.days import METRICS, PostDay

POST_DAY_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "slug": pl.String(),
    "day": pl.Date(),
    "final": pl.Boolean(),
    **{name: pl.Float64() for name in METRICS},
}
COUNTS = ("visitors", "pageviews", "clicks", "impressions", "shares")  # summed over posts; the others averaged


def post_days(days: list[PostDay]) -> pl.DataFrame:
    """One row per source, post and day; a metric the source does not report is null."""
    rows = [
        {"source": d.source, "slug": d.slug, "day": d.day, "final": d.final, **{m: d.metrics.get(m) for m in METRICS}}
        for d in days
    ]
    return pl.DataFrame(rows, schema=POST_DAY_SCHEMA).sort("day", "source", "slug")


def template_days(posts: pl.DataFrame, templates: pl.DataFrame) -> pl.DataFrame:
    """Per source, template version and day: how many posts, the counts summed, the other metrics averaged
    over the posts that report them, and click-through (clicks per impression). `templates`: slug,
    prompt_template, prompt_version (`read_post_templates`); posts no success names are left out."""
    joined = posts.join(templates, on="slug", how="inner")
    averaged = [m for m in METRICS if m not in COUNTS]
    return (
        joined.group_by("source", "prompt_template", "prompt_version", "day")
        .agg(
            pl.len().alias("posts"),
            pl.col("final").all(),
            *[pl.col(m).sum().alias(m) for m in COUNTS],
            *[pl.col(m).mean().alias(m) for m in averaged],
        )
        .with_columns(
            ctr=pl.when(pl.col("impressions") > 0).then(pl.col("clicks") / pl.col("impressions")).otherwise(None)
        )
        .sort("day", "source", "prompt_template", "prompt_version")
    )
