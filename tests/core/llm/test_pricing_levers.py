"""The provider's pricing levers, against the project's fake provider over HTTP (the real `openai` client):
SERVICE_TIER=flex is asked for on every call and booked at the batch price when the answer says flex served it
(half of auto's on the same items, the books equal to the invoice); a 429 resource_unavailable is retried, then
sent at auto with FLEX_THEN_AUTO, else the item is a retryable reject; each call names its prompt template as
prompt_cache_key, so calls sharing a prefix land where it is cached; cache writes a provider reports are booked
at their price, and a worst case assumes every prompt token may be one."""

from __future__ import annotations

import json
from typing import Any

from content_pipeline.generation.budget import call_worst_nano
from content_pipeline.generation.prompts import messages
from content_pipeline.generation.templates import DEFAULT
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.scan import read_records
from content_pipeline.money import PriceTable, to_nano
from content_pipeline.prices import DEFAULT_PRICES, ModelPrice
from content_pipeline.rehearsal.long_prompts import activate_long_templates
from content_pipeline.settings import load_settings
from content_pipeline.store import Store, open_store
from tests.conftest import make_item
from tests.support.helpers import books, fake_llm, invoice, run


def spent(store: Store) -> int:
    return sum(to_nano(r.cost_usd) for r in read_records(store))


def test_flex_is_asked_for_and_booked_at_the_batch_price(make_settings, store: Store, tmp_path) -> None:
    with fake_llm("sk-flex") as server:
        auto = make_settings(openai_api_key="sk-flex", openai_base_url=server.url, store_url=str(tmp_path / "auto"))
        assert run(auto).ok
        auto_nano = spent(open_store(auto.store_url))
        before = invoice(server)
        flex = make_settings(openai_api_key="sk-flex", openai_base_url=server.url, service_tier="flex")
        report = run(flex, store)
        billed = invoice(server) - before
        bodies = [r["body"] for r in server.requests]
    assert report.ok and report.stats.successes == 20
    assert [b.get("service_tier") for b in bodies[: len(bodies) // 2]] == [None] * (len(bodies) // 2)
    assert all(b["service_tier"] == "flex" for b in bodies[len(bodies) // 2 :])
    assert spent(store) == billed == books(store)[0]
    assert abs(spent(store) - auto_nano / 2) <= 20  # half of auto's, within a nano a record


def test_no_flex_capacity_is_retried_then_sent_at_auto_or_left_for_a_later_run(make_settings, store, tmp_path) -> None:
    rows = [make_item(1, title="Busy Hour Lamp"), make_item(2)]
    catalogue = tmp_path / "busy.jsonl"
    catalogue.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for then_auto in (True, False):
        with fake_llm("sk-f", "resource_unavailable@Busy Hour Lamp", retry_after_s=0.05) as server:
            settings = make_settings(
                openai_api_key="sk-f",
                openai_base_url=server.url,
                catalogue=str(catalogue),
                service_tier="flex",
                flex_then_auto=then_auto,
                max_retries=1,
                store_url=str(tmp_path / f"store-{then_auto}"),
            )
            report = run(settings)
            billed = invoice(server)
            tiers = [r["body"].get("service_tier") for r in server.requests if "Busy Hour Lamp" in r["item"]]
        [busy] = [r for r in read_records(open_store(settings.store_url)) if r.slug == "item-0001"]
        failed = [c.outcome for c in busy.calls if c.outcome.startswith("failed")]
        assert failed == ["failed: no capacity at this service tier (429 resource_unavailable)"] * 2
        if then_auto:
            assert report.ok and busy.status == "success" and tiers == ["flex", "flex", None]
            prices = PriceTable(DEFAULT_PRICES)
            answer = busy.calls[-1]
            assert to_nano(answer.cost_usd) == prices.cost_nano(answer.model, answer.tokens_in, answer.tokens_out)
        else:
            assert busy.status == "reject" and busy.reason == "provider_error" and busy.retryable
            assert tiers == ["flex", "flex"]
        assert spent(open_store(settings.store_url)) == billed  # a 429 costs nothing


def _cache_run(make_settings: Any, store: Store, key: bool) -> tuple[float, list[Any]]:
    activate_long_templates(store, 4)
    with fake_llm("sk-c", cache_machines=4, cache_slots=1) as server:
        settings = make_settings(
            openai_api_key="sk-c",
            openai_base_url=server.url,
            prompt_cache_key=key,
            concurrency=1,
            store_url=str(store.url),
        )
        assert run(settings, store).ok
        bodies = [r["body"] for r in server.requests]
    records = read_records(store)
    return sum(r.tokens_cached > 0 for r in records) / len(records), bodies


def test_prompt_cache_key_sends_calls_of_a_template_where_it_is_cached(make_settings, tmp_path) -> None:
    with_key, bodies = _cache_run(make_settings, open_store(str(tmp_path / "keyed")), True)
    without, plain = _cache_run(make_settings, open_store(str(tmp_path / "plain")), False)
    keys = {b["prompt_cache_key"] for b in bodies}  # the template of each call, as the call named it
    assert len(keys) >= 2 and keys <= {f"house-{n}:{DEFAULT.version}" for n in range(4)}
    assert all("prompt_cache_key" not in b for b in plain)
    assert with_key > without, (with_key, without)


def test_cache_writes_are_booked_at_their_price_and_reserved_for(make_settings, store: Store) -> None:
    prices = dict(DEFAULT_PRICES) | {
        "gpt-4o-mini": ModelPrice(
            input_per_mtok=0.15, cached_input_per_mtok=0.075, cache_write_per_mtok=0.30, output_per_mtok=0.60
        )
    }
    activate_long_templates(store, 1)
    with fake_llm("sk-w", cache_writes=True, prices=prices) as server:
        settings = make_settings(openai_api_key="sk-w", openai_base_url=server.url, concurrency=1, price_table=prices)
        assert run(settings, store).ok
        billed = invoice(server)
    records = read_records(store)
    assert spent(store) == billed == books(store)[0]
    first = min(records, key=lambda r: r.started_at)
    table = PriceTable(prices)
    written = to_nano(first.calls[0].cost_usd) - table.cost_nano("gpt-4o-mini", first.tokens_in, first.tokens_out)
    assert written > 0  # the first call wrote the prefix, at twice the input price
    msgs = messages(Item(**make_item(1)))
    worst = call_worst_nano(table, load_settings(price_table=prices), "gpt-4o-mini", msgs)
    assert worst > call_worst_nano(PriceTable(DEFAULT_PRICES), load_settings(), "gpt-4o-mini", msgs)
