"""Fallback when the provider is down for everyone (runbook 004, "System down"): two of the project's fake
providers on loopback, the primary answering 500 to every call, the fallback (FALLBACK_MODEL at
FALLBACK_BASE_URL with FALLBACK_API_KEY) answering. A go-live completes on the fallback within its budget,
no item paid twice (the books equal the two invoices), every answer's record naming the fallback; without
FALLBACK_MODEL the same outage rejects the items as provider errors, retryable; with PUBLISH_APPROVAL=fallback,
a publish run holding content the fallback wrote waits for a human (none outside a flow: simulated)."""

from __future__ import annotations

from typing import Any

import pytest

from content_pipeline.errors import BadInputError
from content_pipeline.ledger.scan import read_records
from content_pipeline.money import to_nano
from content_pipeline.publish.command import publish_command
from content_pipeline.publish.governance import SIGNALS
from content_pipeline.publish.webhook import WebhookTarget
from content_pipeline.settings import load_settings
from content_pipeline.store import Store
from content_pipeline.views.audit import audit
from tests.support.helpers import books, fake_llm, invoice, run
from tests.support.webhook_receiver import WebhookReceiver

FALLBACK = "gpt-4.1-mini"


def with_fallback(make_settings: Any, primary: str, fallback: str, **extra: Any) -> Any:
    """Settings whose primary is at `primary` and whose FALLBACK_MODEL is at `fallback`, which takes only its
    own key."""
    return make_settings(
        openai_api_key="sk-primary",
        openai_base_url=primary,
        fallback_model=FALLBACK,
        fallback_base_url=fallback,
        fallback_api_key="sk-fallback",
        **extra,
    )


def test_a_go_live_completes_on_the_fallback_when_the_primary_is_down(make_settings, store: Store) -> None:
    with fake_llm("sk-primary", "500") as primary, fake_llm("sk-fallback") as fallback:
        settings = with_fallback(
            make_settings,
            primary.url,
            fallback.url,
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


def test_publish_approval_fallback_asks_a_human_for_content_the_fallback_wrote(make_settings, store, tmp_path) -> None:
    with fake_llm("sk-primary", "500*1") as primary, fake_llm("sk-fallback") as fallback:
        settings = with_fallback(
            make_settings,
            primary.url,
            fallback.url,
            max_retries=0,
            concurrency=1,
            limit=1,
        )
        assert run(settings, store).ok  # its one item failed on the primary (one 500): written by the fallback
        assert run(settings.model_copy(update={"limit": 1000, "run_id": None}).with_run_id(), store).ok
    live = {name.lower(): "yes" for name in SIGNALS}
    with WebhookReceiver("whsec-fb") as receiver:
        target = WebhookTarget("webhook", receiver.url, "whsec-fb", 5.0)
        publishing = settings.model_copy(
            update={"publish_approval": "fallback", "publish_webhook_url": receiver.url, **live}
        ).with_run_id()
        asked = publish_command(store, publishing, target, publishing.run_id or "")  # no approver outside a flow
        assert asked.counts == {"simulated": 20} and asked.decision.reason.startswith("simulated")
        assert receiver.deliveries == []
        plain = publishing.model_copy(update={"publish_approval": "signals"})
        sent = publish_command(store, plain, target, publishing.run_id or "")
        target.close()
    assert sent.counts == {"created": 20}
    fallback_made = [r.slug for r in read_records(store) if any(c.provider for c in r.calls)]
    assert len(fallback_made) == 1


def test_a_primary_down_at_the_start_sends_every_call_to_the_fallback(make_settings, store: Store) -> None:
    with fake_llm("sk-primary") as primary:
        gone = primary.url  # the primary's port, closed once the block ends: nobody answers there
    with fake_llm("sk-fallback") as fallback:
        settings = with_fallback(
            make_settings,
            gone,
            fallback.url,
        )
        report = run(settings, store)
        billed = invoice(fallback)
    records = read_records(store)
    assert report.ok and report.stats.successes == 20
    assert all(c.provider == fallback.url for r in records for c in r.calls)  # not one call to the primary
    assert sum(to_nano(r.cost_usd) for r in records) == billed
    assert "fallback: the primary provider failed (down at the start: " in report.markdown()
