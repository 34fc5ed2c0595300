"""Changed items: an item whose template, MODEL or fields changed since its success is generated again (on
both stores); the new version replaces the old in master and the old stays in the ledger; an unchanged
catalogue costs nothing, and a changed item whose new version fails for good is not paid for again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from content_pipeline.generation.changed import changed_slugs
from content_pipeline.generation.prompts import input_hash, legacy_input_hash
from content_pipeline.generation.templates import DEFAULT, read_active, save_template, write_active
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.scan import read_records
from content_pipeline.store import Store
from content_pipeline.views.consolidate import consolidate
from content_pipeline.views.snapshot import read_contents
from tests.conftest import make_item
from tests.support.helpers import record, run, write_ledger

CHANGED = set(range(5, 101, 10))  # 10 of the 100 items


def rows(changed: set[int] = frozenset(), **fields: str) -> list[dict]:
    """The 100-item catalogue, the `changed` items with a new title (or `fields`)."""
    new = fields or None
    return [
        make_item(n, **(new or {"title": f"Sample Widget {n} Mk II"})) if n in changed else make_item(n)
        for n in range(1, 101)
    ]


def slugs(numbers: set[int]) -> set[str]:
    return {f"item-{n:04d}" for n in numbers}


def generated(store: Store, run_id: str) -> list[str]:
    return [r.slug for r in read_records(store) if r.run_id == run_id]


@pytest.fixture
def first_run(make_settings, write_catalogue, store: Store) -> Callable[..., object]:
    """The whole catalogue generated once; returns a maker of later runs over another catalogue."""
    first = run(make_settings(catalogue=write_catalogue(rows(), "v1.jsonl")), store)
    assert first.ok and first.stats.successes == 100

    def later(catalogue: list[dict], name: str, **settings: object):
        return run(make_settings(catalogue=write_catalogue(catalogue, name), **settings), store)

    later.first = first  # type: ignore[attr-defined]
    return later


def test_ten_percent_changed_regenerates_exactly_those_and_an_unchanged_catalogue_pays_nothing(
    first_run, store: Store
) -> None:
    second = first_run(rows(CHANGED), "v2.jsonl")
    assert second.ok and second.audit_ok
    assert sorted(generated(store, second.run_id)) == sorted(slugs(CHANGED))
    assert second.changed == second.needs_content == 10 and second.stats.successes == 10
    assert second.spend_usd == pytest.approx(0.1 * first_run.first.spend_usd, rel=0.15)
    headlines = dict(read_contents(store).select("slug", pl_headline()).iter_rows())
    assert len(headlines) == 100
    for slug, headline in headlines.items():  # master holds the new versions, the rest as they were
        assert ("Mk II" in headline) == (slug in slugs(CHANGED)), slug
    versions = Counter(r.slug for r in read_records(store) if r.status == "success")
    assert {s for s, n in versions.items() if n == 2} == slugs(CHANGED)  # the old versions stay in the ledger
    assert "(10 changed since their success, 0 of them restored from an earlier success" in second.markdown()
    third = first_run(rows(CHANGED), "v2-again.jsonl")
    assert third.ok and third.needs_content == 0 and third.spend_usd == 0
    assert generated(store, third.run_id) == []


def pl_headline():
    import polars as pl

    return pl.col("content").struct.field("headline")


def test_a_changed_item_whose_new_version_fails_for_good_keeps_its_old_content_and_is_not_paid_again(
    first_run, store: Store
) -> None:
    refused = first_run(rows({7}, category="restricted"), "v2.jsonl")  # the model refuses the new version
    assert refused.ok and generated(store, refused.run_id) == ["item-0007"]
    [reject] = [r for r in read_records(store) if r.run_id == refused.run_id]
    assert reject.status == "reject" and not reject.retryable
    assert "Sample Widget 7 |" in dict(read_contents(store).select("slug", pl_headline()).iter_rows())["item-0007"]
    again = first_run(rows({7}, category="restricted"), "v2-again.jsonl")
    assert again.ok and again.needs_content == 0 and again.spend_usd == 0
    back = first_run(rows({7}, category="Kitchen", title="Sample Widget 7 Mk III"), "v3.jsonl")  # changed again
    assert generated(store, back.run_id) == ["item-0007"] and back.stats.successes == 1


def test_scope_changed_takes_only_the_changed_items_and_the_setting_turns_it_off(first_run, store: Store) -> None:
    grown = [*rows(CHANGED), *(make_item(n) for n in range(101, 111))]  # 10 new items as well
    off = first_run(grown, "off.jsonl", regenerate_changed=False)
    assert sorted(generated(store, off.run_id)) == sorted(slugs(set(range(101, 111))))  # the new ones only
    only = first_run(grown, "changed.jsonl", scope="changed", regenerate_changed=False)
    assert sorted(generated(store, only.run_id)) == sorted(slugs(CHANGED))
    assert only.needs_content == 10


def test_an_item_is_changed_by_its_fields_its_template_or_the_model_not_by_a_record_from_before_the_model_counted(
    store: Store, make_settings
) -> None:
    items = [Item(**make_item(n)) for n in (1, 2, 3)]
    settings = make_settings()
    write_ledger(
        store,
        [
            record("item-0001", input_hash=input_hash(items[0], DEFAULT, "gpt-4o-mini")),
            record("item-0002", input_hash=legacy_input_hash(items[1], DEFAULT)),  # written before the model counted
            record("item-0003", input_hash=input_hash(items[2], DEFAULT, "gpt-4.1-mini")),  # another model
        ],
    )
    consolidate(store)
    assert changed_slugs(store, settings, items) == {"item-0003"}
    # another MODEL: the records that name the model see it; one from before compares template and fields only
    assert changed_slugs(store, make_settings(model="gpt-4.1-mini"), items) == {"item-0001"}
    edited = [items[0].model_copy(update={"features": ("A new feature",)}), *items[1:]]
    assert changed_slugs(store, settings, edited) == {"item-0001", "item-0003"}
    unknown = [Item(**make_item(9))]  # no success at all: new, not changed
    assert changed_slugs(store, settings, unknown) == set()
    v2 = DEFAULT.model_copy(update={"version": "2"})  # a new version of the template takes over every item
    save_template(store, v2)
    write_active(store, {v2.key: 1}, read_active(store)[1])
    assert changed_slugs(store, settings, items) == {"item-0001", "item-0002", "item-0003"}


def test_an_item_changed_back_is_restored_from_its_earlier_success_and_not_paid_again(first_run, store: Store) -> None:
    originals = {r.slug: r for r in read_records(store)}
    assert first_run(rows(CHANGED), "v2.jsonl").stats.successes == 10
    back = first_run(rows(), "v1-again.jsonl")  # the ten changes undone
    assert back.ok and back.audit_ok and back.spend_usd == 0 and back.stats.calls == 0
    assert back.changed == 10 and back.restored == 10
    restored = [r for r in read_records(store) if r.run_id == back.run_id]
    assert sorted(r.slug for r in restored) == sorted(slugs(CHANGED))
    for copy in restored:
        assert copy.restored_from == originals[copy.slug].id and copy.cost_usd == 0 and copy.calls == []
        assert copy.content == originals[copy.slug].content and copy.input_hash == originals[copy.slug].input_hash
    headlines = dict(read_contents(store).select("slug", pl_headline()).iter_rows())
    assert not any("Mk II" in h for h in headlines.values())  # master holds the first versions again
    assert "10 of them restored from an earlier success at no cost" in back.markdown()
    settled = first_run(rows(), "v1-once-more.jsonl")
    assert settled.needs_content == 0 and generated(store, settled.run_id) == []
