"""Fallback when the provider is down for everyone (runbook 004, "System down"): two of the project's fake
providers on loopback, the primary answering 500 to every call, the fallback (FALLBACK_MODEL at
FALLBACK_BASE_URL with FALLBACK_API_KEY) answering. A go-live completes on the fallback within its budget,
no item paid twice (the books equal the two invoices), every answer's record naming the fallback; without
FALLBACK_MODEL the same outage rejects the items as provider errors, retryable."""

from __future__ import annotations

import pytest

from content_pipeline.errors import BadInputError
from content_pipeline.ledger.scan import read_records
from content_pipeline.money import to_nano
from content_pipeline.settings import load_settings
from content_pipeline.store import Store
from content_pipeline.views.audit import audit
from tests.support.helpers import books, fake_llm, invoice, run

FALLBACK = "gpt-4.1-mini"


def test_a_go_live_completes_on_the_fallback_when_the_primary_is_down(make_settings, store: Store) -> None:
    with fake_llm("sk-primary", "500") as primary, fake_llm("sk-fallback") as fallback:
        settings = make_settings(
            openai_api_key="sk-primary",
            openai_base_url=primary.url,
            fallback_model=FALLBACK,
            fallback_base_url=fallback.url,
            fallback_api_key="sk-fallback",  # the fallback takes only its own key
            max_retries=1,
            budget_usd=1.0,
        )
        report = run(settings, store)
        billed = invoice(primary) + invoice(fallback)
        assert primary.stats()["billed_nano"] == 0  # a 500 costs nothing
    assert report.ok, report.failure
    records = read_records(store)
    assert sorted(r.slug for r in records) == [f"item-{n:04d}" for n in range(1, 21)]  # each item decided once
    assert report.stats.successes == 20 and all(r.status == "success" for r in records)
    assert all(r.model == FALLBACK for r in records)
    answered = [c for r in records for c in r.calls if not c.outcome.startswith("failed")]
    assert answered and all(c.provider == fallback.url and c.model == FALLBACK for c in answered)
    failed = [c for r in records for c in r.calls if c.outcome.startswith("failed")]
    assert failed and all(c.provider is None and c.cost_usd == 0 for c in failed)  # the primary's 500s
    spent = sum(to_nano(r.cost_usd) for r in records)
    assert spent == billed == books(store)[0] and 0 < report.spend_usd <= 1.0  # nothing paid twice
    assert audit(store).ok
    text = report.markdown()
    assert "fallback: the primary provider failed (gpt-4o-mini: provider error 500" in text
    assert f"{len(answered)} call(s) went to FALLBACK_MODEL" in text


def test_without_a_fallback_the_outage_rejects_the_items_for_a_later_run(make_settings, store: Store) -> None:
    with fake_llm("sk-primary", "500") as primary:
        report = run(make_settings(openai_api_key="sk-primary", openai_base_url=primary.url, max_retries=1), store)
    records = read_records(store)
    assert report.stats.successes == 0 and len(records) == 20
    assert {r.reason for r in records} == {"provider_error"} and all(r.retryable for r in records)
    assert "fallback:" not in report.markdown()


def test_a_fallback_model_without_a_price_is_refused_before_the_run() -> None:
    with pytest.raises(BadInputError, match="FALLBACK_MODEL 'llama-3-8b' has no price in PRICE_TABLE"):
        load_settings(openai_api_key="sk-x", fallback_model="llama-3-8b")
