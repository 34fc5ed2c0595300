"""The segments a post belongs to, for drops and KPIs: the template version that wrote it, the category it was
published under, and its publishing slot (the UTC quarter of the day a target first put it live)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from content_pipeline.engagement.published import Published, published
from content_pipeline.store import Store
from content_pipeline.views.snapshot import read_post_templates

SLOT_HOURS = 6  # a slot is a quarter of the UTC day: 00-06, 06-12, 12-18, 18-24
Segments = dict[str, dict[str, str]]  # segmentation name (template, category, slot) -> slug -> its value


def slot(at: datetime) -> str:
    """The publishing slot of a post first live at `at`: `06-12 UTC`."""
    start = at.hour - at.hour % SLOT_HOURS
    return f"{start:02d}-{start + SLOT_HOURS:02d} UTC"


def post_segments(posts: Published, templates: Mapping[str, str]) -> Segments:
    """Each published post's template (`templates`: slug -> "id:version"), category (the one its post went out
    under) and slot; a post a segmentation cannot place is left out of that one only."""
    return {
        "template": {slug: key for slug, key in templates.items() if slug in posts.slugs},
        "category": {slug: c for slug, c in posts.categories.items() if slug in posts.slugs},
        "slot": {slug: slot(at) for slug, at in posts.first_live.items()},
    }


def template_keys(store: Store) -> dict[str, str]:
    """slug -> "id:version" of the template that wrote each master success."""
    frame = read_post_templates(store)
    return {s: f"{t}:{v}" for s, t, v in frame.select("slug", "prompt_template", "prompt_version").iter_rows()}


def store_segments(store: Store) -> Segments:
    """The segments of every post the store's attempt log shows published (no catalogue is read: health runs
    this hourly)."""
    return post_segments(published(store), template_keys(store))
