"""A real OpenAI-compatible server, not the project's fake: llama.cpp's own server (tests/support/llama.py)
serving SmolLM2-135M, through the real `openai` client over HTTP. What it proves:

- structured output: the server takes our `json_schema` request (`max_completion_tokens`, strict) and answers a
  chat.completion the client reads, text, finish reason and usage (cached prompt tokens included);
- a go-live on 5 items completes against it: each item decided (a tiny model writes poor content, so QA rejects
  it with the cause, e.g. `truncated` when the answer hit the token limit), the spend computed from the usage
  the server reported at PRICE_TABLE's prices, the ledger and the books agreeing, audit green;
- what the server does differently is one clear line, never a traceback: no rate-limit headers (the run's
  report says so), no Batch API (batch mode stops before anything is planned), a request it refuses (400).

The prose is not judged: a 135M model is here for its wire format, the fake stays for faults and scale."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.ledger.scan import read_records
from content_pipeline.llm.client import CallFailed, complete, make_client
from content_pipeline.money import PriceTable, to_nano
from content_pipeline.prices import ModelPrice
from content_pipeline.settings import Settings, load_settings
from content_pipeline.store import open_store
from content_pipeline.views.audit import audit
from tests.conftest import make_item
from tests.support.helpers import books, run
from tests.support.llama import MODEL

pytestmark = [pytest.mark.llama, pytest.mark.slow]
PRICES = {MODEL: ModelPrice(input_per_mtok=0.10, cached_input_per_mtok=0.05, output_per_mtok=0.40)}
ITEMS = 5
SHORT = {  # a schema whose strings are bounded: the model's answer fits in the token limit and parses
    "type": "json_schema",
    "json_schema": {
        "name": "short",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "headline": {"type": "string", "maxLength": 60},
                "highlights": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 3},
            },
            "required": ["headline", "highlights"],
            "additionalProperties": False,
        },
    },
}


def settings_for(url: str, tmp_path: Path, **extra: Any) -> Settings:
    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text("".join(json.dumps(make_item(n)) + "\n" for n in range(1, ITEMS + 1)))
    return load_settings(
        store_url=str(tmp_path / "store"),
        catalogue=str(catalogue),
        openai_base_url=url,
        openai_api_key="sk-local-llama",  # the server takes any key: the client needs one to leave offline mode
        model=MODEL,
        strong_model=MODEL,
        price_table=PRICES,
        max_output_tokens=256,  # a tiny model's JSON runs long: the bound keeps each call about 2 s here
        request_timeout_s=300,  # its one slot answers slowly on a loaded 2-core machine
        **extra,
    ).with_run_id()


async def _one(settings: Settings, response_format: dict[str, Any]) -> Any:
    client = make_client(settings)
    try:
        msgs = [{"role": "user", "content": "Describe a steel garden kneeler for a shop page."}]
        return await complete(client, settings, MODEL, msgs, response_format)
    finally:
        await client.close()


def test_a_structured_answer_and_its_usage_are_read(llama_server: str, tmp_path: Path) -> None:
    answer = asyncio.run(_one(settings_for(llama_server, tmp_path), SHORT))
    assert answer.finish_reason == "stop" and answer.model == MODEL
    content = json.loads(answer.text)  # the server held the answer to the schema
    assert set(content) == {"headline", "highlights"} and isinstance(content["highlights"], list)
    assert answer.tokens_in > 10 and 0 < answer.tokens_out <= 256 and 0 <= answer.cached_tokens <= answer.tokens_in


def test_a_request_the_server_refuses_is_one_line(llama_server: str, tmp_path: Path) -> None:
    broken = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/nowhere"}}}
    with pytest.raises(CallFailed) as refused:
        asyncio.run(_one(settings_for(llama_server, tmp_path), broken))
    assert refused.value.cause.startswith("provider error 400: ") and not refused.value.transient
    assert "\n" not in refused.value.cause


def test_go_live_on_five_items_against_the_real_server(llama_server: str, tmp_path: Path) -> None:
    settings = settings_for(llama_server, tmp_path)
    report = run(settings)
    assert report.ok, report.failure
    store = open_store(settings.store_url)
    records = read_records(store)
    assert sorted(r.slug for r in records) == [f"item-{n:04d}" for n in range(1, ITEMS + 1)]  # each decided once
    prices = PriceTable(PRICES)
    for record in records:
        assert record.status == "success" or record.reason, record  # a reject names its cause
        answered = [c for c in record.calls if not c.outcome.startswith("failed")]  # (a timeout under load: booked
        # at its worst case, as any lost answer)
        assert answered and all(c.model == MODEL and c.tokens_in > 0 and c.tokens_out > 0 for c in answered), record
        for call in answered:  # the spend is the server's usage at the price table's prices
            assert to_nano(call.cost_usd) == prices.cost_nano(
                MODEL, call.tokens_in, call.tokens_out, call.tokens_cached
            )
    spent = sum(to_nano(r.cost_usd) for r in records)
    assert spent > 0 and books(store)[0] == spent
    assert audit(store).ok
    text = report.markdown()
    assert "audit: green" in text
    assert "none of the provider's" in text and "carried rate-limit headers (x-ratelimit-*)" in text


def test_batch_mode_against_a_server_without_a_batch_api_says_so_in_one_line(llama_server: str, tmp_path) -> None:
    report = run(settings_for(llama_server, tmp_path, generation_mode="batch"))
    assert not report.ok
    assert report.failure is not None and "has no Batch API (404 when asked to list the batches)" in report.failure
    assert "use GENERATION_MODE=sync with this server" in report.failure
    assert read_records(open_store(str(tmp_path / "store"))) == []  # nothing planned, reserved or paid
