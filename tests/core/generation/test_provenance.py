"""Provenance computed, not constant: each record names the template and version the item was assigned,
the model that answered as the response names it, the item fields the prompt actually showed, and when."""

from __future__ import annotations

import json
from datetime import datetime

from content_pipeline.generation.templates import DEFAULT
from content_pipeline.ledger.scan import read_records
from content_pipeline.store import Store
from tests.conftest import make_item
from tests.support.helpers import fake_llm, run


def test_each_record_says_what_made_it(make_settings, write_catalogue, store: Store) -> None:
    rows = [
        make_item(1, description="A sturdy widget for the kitchen."),  # every field given
        make_item(2, features=[]),  # no features, no description: the prompt shows neither
    ]
    with fake_llm("sk-p", snapshot="-2024-07-18") as server:
        settings = make_settings(catalogue=write_catalogue(rows), openai_api_key="sk-p", openai_base_url=server.url)
        report = run(settings, store)
        shown = {json.loads(r["item"])["title"]: set(json.loads(r["item"])) for r in server.requests}
    assert report.ok, report.failure
    by_slug = {r.slug: r for r in read_records(store)}
    first, second = by_slug["item-0001"], by_slug["item-0002"]
    assert first.source_fields == ["title", "category", "price", "features", "promo", "description"]
    assert second.source_fields == ["title", "category", "price", "promo"]
    assert shown == {"Sample Widget 1": set(first.source_fields), "Sample Widget 2": set(second.source_fields)}
    for record in (first, second):
        assert (record.prompt_template, record.prompt_version) == (DEFAULT.id, DEFAULT.version)
        assert record.model == f"{record.calls[-1].model}-2024-07-18"  # as the answer names it
        assert datetime.fromisoformat(record.started_at) <= datetime.fromisoformat(record.finished_at)
