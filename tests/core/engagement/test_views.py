"""Engagement views: a post's figures per source and day, and per template version and day with the post as the
unit (counts summed, the rest averaged, click-through from the sums); only the newest revision counts."""

from __future__ import annotations

from datetime import date

import polars as pl

from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.log import append_days, read_log
from content_pipeline.engagement.views import post_days, template_days
from content_pipeline.store import Store
from content_pipeline.views.snapshot import read_post_templates
from tests.support.helpers import run


def gsc(slug: str, on: str, clicks: float, impressions: float, position: float) -> PostDay:
    metrics = {"clicks": clicks, "impressions": impressions, "position": position}
    return PostDay(source="search-console", slug=slug, day=date.fromisoformat(on), metrics=metrics)


def test_template_days_sum_counts_average_the_rest_and_take_ctr_from_the_sums() -> None:
    posts = post_days(
        [gsc("a", "2026-12-01", 3, 100, 4.0), gsc("b", "2026-12-01", 1, 300, 8.0), gsc("c", "2026-12-01", 5, 50, 2.0)]
    )
    templates = pl.DataFrame(
        {"slug": ["a", "b", "c"], "prompt_template": ["t", "t", "u"], "prompt_version": ["1", "1", "2"]}
    )
    rows = {(r["prompt_template"], r["prompt_version"]): r for r in template_days(posts, templates).to_dicts()}
    t, u = rows[("t", "1")], rows[("u", "2")]
    assert (t["posts"], t["clicks"], t["impressions"], t["position"]) == (2, 4.0, 400.0, 6.0)
    assert t["ctr"] == 4 / 400 and u["ctr"] == 5 / 50 and t["visitors"] == 0.0  # (no source reported visitors)


def test_only_the_newest_revision_reaches_the_views(store: Store) -> None:
    append_days(store, "search-console", [gsc("a", "2026-12-01", 3, 100, 4.0)])
    append_days(store, "search-console", [gsc("a", "2026-12-01", 7, 120, 4.0)])  # late data for the same day
    [row] = post_days(read_log(store).days()).to_dicts()
    assert (row["clicks"], row["impressions"]) == (7.0, 120.0)


def test_posts_are_matched_to_the_template_version_that_wrote_them(make_settings, store: Store) -> None:
    settings = make_settings(limit=3)
    assert run(settings, store).ok
    templates = read_post_templates(store)
    assert templates.height == 3 and templates["prompt_template"].n_unique() == 1
    slug = templates["slug"][0]
    days = template_days(post_days([gsc(slug, "2026-12-01", 2, 40, 3.0)]), templates)
    assert days.select("posts", "clicks", "prompt_template").row(0) == (1, 2.0, templates["prompt_template"][0])
