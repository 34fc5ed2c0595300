"""Batch mode over HTTP with the real `openai` client against the fake provider's Files and Batches API, on
both stores: a go-live submits, collect settles every item at half the sync price, escalations go to a
follow-up batch (or are called at once), expired requests are retryable rejects, a big run is split at the
provider's limits, and status and health show what is outstanding."""

from __future__ import annotations

from collections import Counter

import pytest

from content_pipeline.ledger.scan import read_records
from content_pipeline.ops.health import health
from content_pipeline.ops.status import status
from content_pipeline.store import Store
from content_pipeline.views.audit import audit
from tests.support.helpers import batch_settings, collect, fake_llm, invoice, run


def test_a_batch_go_live_settles_every_item_at_half_the_sync_price(make_settings, store: Store, tmp_path) -> None:
    with fake_llm("sk-b") as server:  # the same items, called at once, on a store of their own
        synced = run(make_settings(openai_api_key="sk-b", openai_base_url=server.url, store_url=str(tmp_path / "sync")))
    assert synced.ok and synced.stats.successes == 20
    with fake_llm("sk-b") as server:
        settings = batch_settings(make_settings, server)
        submitted = run(settings, store)
        assert submitted.ok and submitted.stats.calls == 0 and read_records(store) == []
        assert submitted.batches is not None and submitted.batches.requests == 20
        assert "20 request(s) planned in 1 batch(es)" in submitted.markdown()
        line = collect(settings, store)
        billed = invoice(server)
        assert server.stats()["batches_created"] == 1 and server.stats()["requests"] == 0  # no call made at once
    records = read_records(store)
    assert line.startswith("1 batch(es) settled: 20 success(es), 0 reject(s), 0 escalated")
    assert len(records) == 20 and {r.status for r in records} == {"success"}
    assert {r.run_id for r in records} == {settings.run_id} and all(len(r.calls) == 1 for r in records)
    spent = sum(round(r.cost_usd * 1e9) for r in records)
    assert spent == billed
    assert spent == pytest.approx(0.5 * synced.spend_usd * 1e9, abs=20)  # half price, within a nano a record
    assert audit(store).ok
    again = collect(settings, store)  # collecting twice appends nothing twice
    assert again.startswith("0 batch(es) settled") and len(read_records(store)) == 20
    rerun = run(batch_settings(make_settings, server), store)  # nothing left to plan
    assert rerun.ok and rerun.batches is not None and rerun.batches.requests == 0


@pytest.mark.parametrize("escalate", ["batch", "sync"])
def test_a_qa_failure_escalates_to_the_strong_model_in_a_follow_up_batch_or_at_once(
    make_settings, store: Store, escalate: str
) -> None:
    with fake_llm("sk-b", "schema@Sample Widget 3*1") as server:  # item 3's first answer has the wrong shape
        settings = batch_settings(make_settings, server, batch_escalate=escalate)
        assert run(settings, store).ok
        first = collect(settings, store)
        settled_now = 19 if escalate == "batch" else 20  # called at once, the escalation is settled too
        assert f"{settled_now} success(es), 0 reject(s), 1 escalated" in first
        if escalate == "batch":
            assert "1 outstanding" not in first and server.stats()["batches_created"] == 2
            assert collect(settings, store).startswith("1 batch(es) settled: 1 success(es)")
        else:
            assert server.stats()["batches_created"] == 1 and server.stats()["requests"] == 1  # called at once
    records = read_records(store)
    assert len(records) == 20 and Counter(r.status for r in records) == {"success": 20}
    [escalated] = [r for r in records if r.escalated]
    assert escalated.slug == "item-0003" and [c.model for c in escalated.calls] == ["gpt-4o-mini", "gpt-4o"]
    assert escalated.calls[0].outcome.startswith("schema") and escalated.attempt == 2
    assert escalated.cost_usd == pytest.approx(sum(c.cost_usd for c in escalated.calls))
    assert audit(store).ok


def test_expired_requests_are_retryable_rejects_that_the_next_run_takes_again(make_settings, store: Store) -> None:
    with fake_llm("sk-b", batch_expire_share=0.25) as server:
        settings = batch_settings(make_settings, server)
        assert run(settings, store).ok
        assert "15 success(es), 5 reject(s)" in collect(settings, store)
        rejects = [r for r in read_records(store) if r.status == "reject"]
        assert len(rejects) == 5 and all(r.retryable and r.cost_usd == 0 for r in rejects)
        assert all("batch expired: batch_expired" in (r.error or "") for r in rejects)
        server.config.batch_expire_share = 0.0
        follow = batch_settings(make_settings, server)
        again = run(follow, store)
        assert again.batches is not None and again.batches.requests == 5  # exactly the expired ones
        assert "5 success(es)" in collect(follow, store)
    assert audit(store).ok


def test_a_run_bigger_than_the_limits_is_split_and_the_budget_leaves_the_rest_claimable(
    make_settings, store: Store
) -> None:
    with fake_llm("sk-b") as server:
        settings = batch_settings(make_settings, server, batch_max_requests=7, budget_usd=0.003, min_item_cost_usd=0)
        report = run(settings, store)
        assert report.batches is not None
        planned = report.batches.requests
        assert 0 < planned < 20 and report.stats.not_attempted == 20 - planned  # the budget's share
        assert report.stop_reason and report.stop_reason.startswith("run budget $0.0030 reached")
        assert len(report.batches.planned) == -(-planned // 7) == server.stats()["batches_created"]
        assert report.batches.reserved_nano <= 3_000_000
        collect(settings, store)
    assert len(read_records(store)) == planned and audit(store).ok
    assert sum(r.cost_usd for r in read_records(store)) <= 0.003


def test_status_and_health_show_the_outstanding_batches_and_their_age(make_settings, store: Store) -> None:
    with fake_llm("sk-b", batch_delay_s=3600) as server:
        settings = batch_settings(make_settings, server)
        assert run(settings, store).ok
        line = collect(settings, store)
    assert line.endswith("0 already in the ledger, $0.0000; 1 outstanding (oldest 0.0 h)")
    [row] = status(store, settings.catalogue)["batches_outstanding"]
    assert row["run_id"] == settings.run_id and row["requests"] == 20 and row["batch_id"].startswith("batch_")
    [check] = [c for c in health(store, settings).checks if c.name == "batches"]
    assert check.level == "green" and check.detail.startswith("1 outstanding (20 request(s)); oldest")
    assert status(store, settings.catalogue)["needs_content"] == 0  # pending in the batch, not needing content


def test_a_batch_cancelled_at_the_provider_settles_as_retryable_rejects(make_settings, store: Store) -> None:
    import openai

    with fake_llm("sk-b", batch_delay_s=3600) as server:
        settings = batch_settings(make_settings, server)
        assert run(settings, store).ok
        client = openai.OpenAI(api_key="sk-b", base_url=server.url, max_retries=0)
        [batch] = client.batches.list(limit=10)
        assert batch.metadata["run_id"] == settings.run_id and batch.status == "in_progress"
        assert client.batches.cancel(batch.id).status == "cancelled"
        assert "0 success(es), 20 reject(s)" in collect(settings, store)
    rejects = read_records(store)
    assert len(rejects) == 20 and all(r.retryable and "batch_cancelled" in (r.error or "") for r in rejects)
    assert audit(store).ok


def test_an_escalation_the_budget_cannot_cover_is_a_retryable_reject_that_keeps_the_first_answers_cost(
    make_settings, store: Store
) -> None:
    from content_pipeline.generation.budget import call_worst_nano
    from content_pipeline.generation.prompts import messages
    from content_pipeline.intake.catalogue import Item
    from content_pipeline.money import PriceTable, to_usd
    from tests.conftest import make_item

    probe = make_settings()
    prices = PriceTable(probe.price_table)
    firsts = [call_worst_nano(prices, probe, "gpt-4o-mini", messages(Item(**make_item(n))), True) for n in range(1, 21)]
    budget = to_usd(sum(firsts) + 1000)  # every first request, and not one escalation to gpt-4o
    with fake_llm("sk-b", "schema@Sample Widget 3*1") as server:
        settings = batch_settings(make_settings, server, budget_usd=budget, min_item_cost_usd=0)
        assert run(settings, store).ok
        assert "19 success(es), 1 reject(s), 1 escalated" in collect(settings, store)
        assert server.stats()["batches_created"] == 1  # no follow-up batch
    [reject] = [r for r in read_records(store) if r.status == "reject"]
    assert reject.slug == "item-0003" and reject.retryable and reject.reason == "schema"
    assert "escalation skipped: run budget" in (reject.error or "")
    assert len(reject.calls) == 1 and reject.cost_usd == reject.calls[0].cost_usd > 0
    assert sum(r.cost_usd for r in read_records(store)) <= budget and audit(store).ok


def test_a_batch_is_cut_at_the_byte_limit_of_its_input_file(make_settings, store: Store) -> None:
    from content_pipeline.batches.submit import first_requests, plan_batches
    from content_pipeline.generation.budget import RunBudget
    from content_pipeline.generation.templates import active_templates
    from content_pipeline.intake.catalogue import Item
    from content_pipeline.store import layout
    from tests.conftest import make_item

    settings = make_settings(batch_max_bytes=4096)
    items = [Item(**make_item(n)) for n in range(1, 21)]
    plans, planned = plan_batches(
        store, settings, "cut", first_requests(items, active_templates(store)), "gpt-4o-mini", RunBudget(1.0)
    )
    sizes = [len(store.get(layout.batch_key("cut", p.name, layout.BATCH_INPUT)) or b"") for p in plans]
    assert planned.requests == 20 and len(plans) > 1 and all(0 < size <= 4096 for size in sizes)
    assert [r.slug for p in plans for r in p.requests] == [i.slug for i in items]  # each once, in order


def test_collect_with_nothing_outstanding_needs_no_provider(make_settings, store: Store) -> None:
    offline = make_settings()  # no key: the offline model, as `make run` and a fresh `make up` have
    assert run(offline, store).ok
    assert (
        collect(offline, store)
        == "0 batch(es) settled: 0 success(es), 0 reject(s), 0 escalated, 0 already in the ledger, $0.0000; 0 outstanding"
    )


def test_batch_mode_without_a_provider_is_one_line_before_anything_starts() -> None:
    from content_pipeline.errors import BadInputError
    from content_pipeline.settings import load_settings

    with pytest.raises(BadInputError) as refused:
        load_settings(generation_mode="batch", wp_app_password="app-secret-123")
    assert str(refused.value) == (
        "settings: GENERATION_MODE=batch needs a provider (OPENAI_API_KEY): the offline model answers calls only"
    )  # a rule across settings names no input: the secrets among them stay out


@pytest.mark.parametrize("escalate", ["batch", "sync"])
def test_a_canary_leaked_in_a_batch_answer_is_a_prompt_leak_reject_at_collect(
    make_settings, store: Store, escalate: str
) -> None:
    import json

    from content_pipeline.claims.pending import read_plans
    from content_pipeline.generation.prompts import CANARY
    from content_pipeline.store import layout

    with fake_llm("sk-b", "leak_canary@Sample Widget 3") as server:  # item 3's answers repeat the canary
        settings = batch_settings(make_settings, server, batch_escalate=escalate)
        assert run(settings, store).ok
        [state] = read_plans(store, settings.run_id)
        sent = store.get(layout.batch_key(settings.run_id, state.plan.name, layout.BATCH_INPUT)) or b""
        systems = {json.loads(line)["body"]["messages"][0]["content"] for line in sent.splitlines()}
        assert {c for s in systems for c in CANARY.findall(s)} == {state.plan.canary}  # the plan keeps it
        collect(settings, store)  # in a process of its own, collect would read the canary from the plan
        if escalate == "batch":
            plans = read_plans(store, settings.run_id, collected=True)
            assert {s.plan.canary for s in plans} == {state.plan.canary} and len(plans) == 2  # the escalation too
            collect(settings, store)
        else:
            [call] = [r for r in server.requests if r["path"].endswith("/chat/completions")]
            assert CANARY.findall(call["body"]["messages"][0]["content"]) == [state.plan.canary]
    records = {r.slug: r for r in read_records(store)}
    leaked = records["item-0003"]
    assert (leaked.status, leaked.reason, leaked.content) == ("reject", "prompt_leak", None)
    assert [c.outcome for c in leaked.calls] == ["prompt_leak", "prompt_leak"] and leaked.escalated
    assert state.plan.canary not in (leaked.error or "")
    assert sum(r.status == "success" for r in records.values()) == 19 and audit(store).ok


def test_a_plan_made_before_canaries_keeps_its_digest_and_is_judged_on_the_verbatim_check() -> None:
    import hashlib

    from content_pipeline.claims.pending import BatchPlan

    old = {
        "run_id": "r",
        "name": "0001",
        "model": "m",
        "attempt": 1,
        "budget_usd": 1.0,
        "requests": [],
        "created_at": "t",
    }
    plan = BatchPlan.model_validate(old)
    assert plan.canary == ""
    assert (
        plan.digest
        == hashlib.sha256(BatchPlan.model_validate(old).model_dump_json(exclude={"canary"}).encode()).hexdigest()[:16]
    )
    assert plan.model_copy(update={"canary": "cp-0123456789abcdef"}).digest != plan.digest
