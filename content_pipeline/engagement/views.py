"""Engagement as views: each post's figures per source and day (the newest revision), and summed per template
version and day with the post as the unit."""

from __future__ import annotations

from collections.abc import Sequence

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


def first_source(posts: pl.DataFrame, groups: Sequence[Sequence[str]] | None = None) -> pl.DataFrame:
    """One row per post and day: slug, day, final (every source's row final) and each metric of `groups` (every
    metric alone when None) from the first source by name that reports that whole group for it, so a metric two
    sources report is counted once, and the metrics of a group (clicks and impressions) come from one source."""
    keys = posts.select("slug", "day").unique()
    out = keys.join(posts.group_by("slug", "day").agg(pl.col("final").all()), on=["slug", "day"])
    for group in groups if groups is not None else [(m,) for m in METRICS]:
        have = posts.filter(pl.all_horizontal(*(pl.col(m).is_not_null() for m in group)))
        first = have.sort("source").group_by("slug", "day", maintain_order=True).first().select("slug", "day", *group)
        out = out.join(first, on=["slug", "day"], how="left")
    return out.sort("day", "slug")
