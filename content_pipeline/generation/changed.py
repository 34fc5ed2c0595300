"""Changed items: those whose input hash (template, model, fields) is not what their success was generated from."""

from __future__ import annotations

import polars as pl

from content_pipeline.generation.prompts import input_hash, legacy_input_hash
from content_pipeline.generation.templates import active_templates
from content_pipeline.intake.catalogue import Item
from content_pipeline.settings import Settings
from content_pipeline.store import Store
from content_pipeline.views.snapshot import read_inputs


def changed_slugs(store: Store, settings: Settings, items: list[Item]) -> set[str]:
    """The slugs among `items` that master holds a success for, generated from other inputs than the item's
    now: another template or version, another MODEL, or changed fields. An item whose current inputs have a
    success (or a reject for good, after one) is not among them: it is never paid for again."""
    if not items:
        return set()
    hashes, superseded = read_inputs(store)
    wanted = [item.slug for item in items]
    recorded = dict(hashes.filter(pl.col("slug").is_in(wanted)).iter_rows())
    if not recorded:
        return set()
    templates = active_templates(store)
    changed = set()
    for item in items:
        old = recorded.get(item.slug)
        if old is None:
            continue
        template = templates.for_slug(item.slug)
        now = input_hash(item, template, settings.model)
        if now not in (old, superseded.get(item.slug)) and legacy_input_hash(item, template) != old:
            changed.add(item.slug)
    return changed
