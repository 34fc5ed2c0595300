"""Preflight: drops invalid, done and not-queued items with counts, rewrites the batch, guards the budget."""

from __future__ import annotations

import json

import pytest

from content_pipeline.errors import BadInputError, BudgetRefusedError
from content_pipeline.intake.catalogue import Item
from content_pipeline.intake.preflight import preflight
from content_pipeline.run.reporter import PlainReporter
from content_pipeline.run.stages import Stages
from content_pipeline.store import layout
from tests.conftest import make_item, snapshot
from tests.support.helpers import run


def test_drops_invalid_done_and_not_queued_and_rewrites_the_batch(make_settings, store) -> None:
    done_settings = make_settings(limit=2)
    run(done_settings, store)  # item-0001 and item-0002 are now done
    settings = make_settings()
    run_id = settings.run_id
    Stages(settings, store, PlainReporter()).batch([Item(**make_item(n)) for n in (3, 4)], hold=False)
    key = layout.run_key(run_id, "batch.jsonl")
    lines = [
        *store.get(key).decode().splitlines(),
        json.dumps(make_item(1)),  # done
        json.dumps(make_item(9)),  # not queued for this run
        json.dumps(make_item(10, slug="../up")),  # invalid
        "{not json",  # invalid
    ]
    store.put(key, ("\n".join(lines) + "\n").encode())
    result = preflight(store, settings, run_id, lambda items: 0)
    assert [i.slug for i in result.items] == ["item-0003", "item-0004"]
    assert dict(result.dropped) == {"done": 1, "not_queued": 1, "invalid": 2}
    assert "preflight dropped 2 invalid item(s) from the batch" in result.warnings
    assert [json.loads(x)["slug"] for x in store.get(key).decode().splitlines()] == ["item-0003", "item-0004"]


def test_budget_guard_refuses_before_any_spend(make_settings, store) -> None:
    settings = make_settings(budget_usd=1.0, min_item_cost_usd=0.25)
    report = run(settings, store)
    assert isinstance(report.error, BudgetRefusedError) and str(report.error) == (
        "budget too low for batch size: batch size 20 items, budget $1.00, minimum needed $5.00 (at $0.2500/item)"
    )
    assert report.failure == f"preflight: {report.error} (spent $0.0000 of $1.00)"
    assert store.list(layout.LEDGER_PREFIX) == []


def test_the_guard_defaults_to_the_batchs_worst_case_from_the_price_table(make_settings, store) -> None:
    from content_pipeline.generation.budget import batch_worst_nano
    from content_pipeline.generation.templates import active_templates
    from content_pipeline.money import to_usd

    items = [Item(**make_item(n)) for n in range(1, 21)]
    worst = to_usd(batch_worst_nano(make_settings(), active_templates(store), items))
    # a call to gpt-4o-mini plus an escalation to gpt-4o: about a cent an item, not the runbook's $0.25
    assert 20 * 0.005 < worst < 20 * 0.02
    refused = run(make_settings(budget_usd=round(worst * 0.99, 6)), store)
    assert isinstance(refused.error, BudgetRefusedError)
    assert f"minimum needed ${worst:.4f} (the batch's worst case, ${worst / 20:.4f}/item" in str(refused.error)
    assert "plus an escalation on gpt-4o" in str(refused.error) and store.list(layout.LEDGER_PREFIX) == []
    enough = run(make_settings(budget_usd=round(worst * 1.01, 6)), store)
    assert enough.ok and enough.stats.successes == 20


def test_unknown_model_is_refused_before_any_spend(make_settings, store) -> None:
    settings = make_settings(model="no-such-model")
    report = run(settings, store)
    assert isinstance(report.error, BadInputError)
    assert str(report.error).startswith("model 'no-such-model' has no price in PRICE_TABLE")
    assert store.list(layout.LEDGER_PREFIX) == []


def test_missing_batch_names_the_command_to_run(make_settings, store) -> None:
    settings = make_settings(run_id="never-batched")
    before = snapshot(store)
    with pytest.raises(BadInputError, match="run `content-pipeline batch --run-id never-batched` first"):
        preflight(store, settings, "never-batched", lambda items: 0)
    assert snapshot(store) == before


def test_a_run_that_could_take_the_day_over_its_daily_budget_is_refused_before_any_spend(make_settings, store) -> None:
    from content_pipeline.ledger.scan import read_records
    from content_pipeline.ledger.spend import day_start, spent_since
    from content_pipeline.money import usd
    from content_pipeline.views.daily import spent_today

    first = run(make_settings(limit=5), store)
    spent = sum(r.cost_usd for r in read_records(store))
    assert first.ok and spent > 0 and spent_since(store, day_start()) == round(spent * 1e9) == spent_today(store)
    records = len(read_records(store))
    refused = run(make_settings(limit=5, budget_usd=10, daily_budget_usd=10 + spent / 2), store)
    assert not refused.ok and refused.failure.startswith(
        f"preflight: daily budget: today's spend {usd(spent)} plus this run's budget $10.00 could take the day over "
        f"DAILY_BUDGET_USD ${10 + spent / 2:.2f}: lower --budget-usd to $"
    ), refused.failure
    assert len(read_records(store)) == records  # nothing was spent
    assert run(make_settings(limit=5, budget_usd=10, daily_budget_usd=10 + spent * 2), store).ok
