"""KPI and cost reports against a ledger whose true figures the test knows, across a period boundary: the
figures, the comparison with the prior period, the days charted, and PNG charts of the expected size."""

from __future__ import annotations

import json
import struct

import pytest

from content_pipeline.ops.charts import HEIGHT_PX, WIDTH_PX
from content_pipeline.ops.reports import build_report, terminal, write_report
from content_pipeline.store import Store
from tests.support.helpers import LEDGER, NOW, write_ledger


@pytest.fixture
def ledger(store: Store) -> Store:
    write_ledger(store, LEDGER)
    return store


def test_the_kpi_report_has_the_true_figures_and_the_change(ledger: Store) -> None:
    report = build_report(ledger, "kpi", "daily", NOW)
    now, before = report.current, report.prior
    assert (now.attempted, now.successes, now.rejects, now.records, now.escalated) == (4, 3, 1, 5, 1)
    assert (before.attempted, before.successes, before.rejects, before.records) == (3, 2, 1, 3)
    assert now.cost_nano == 17_000_000 and before.cost_nano == 3_000_000
    assert now.rejects_by_reason == {"refusal": 1} and before.rejects_by_reason == {"length": 1}
    rows = {r["metric"]: r for r in report.rows()}
    assert rows["items_attempted"] == {
        "metric": "items_attempted",
        "this period": "4",
        "prior period": "3",
        "change": "+1 (+33.3%)",
    }
    assert rows["success_rate"]["this period"] == "75.0%" and rows["success_rate"]["prior period"] == "66.7%"
    assert rows["success_rate"]["change"] == "+8.3 pp"
    assert rows["escalation_rate"]["this period"] == "20.0%" and rows["escalation_rate"]["change"] == "+20.0 pp"
    assert rows["cost_per_success_usd"]["this period"] == "$0.0057"  # $0.017 over 3 successes
    assert rows["cost_per_success_usd"]["change"] == "+$0.0042 (+277.8%)"  # against $0.0015: 0.00417 more
    assert {r["reason"]: r["change"] for r in report.reason_rows()} == {"refusal": "+1", "length": "-1 (-100.0%)"}
    assert "items_attempted       4" in terminal(report)


def test_the_cost_report_by_model_and_by_template(ledger: Store) -> None:
    report = build_report(ledger, "cost", "daily", NOW)
    models = {m["model"]: (m["calls"], m["cost_nano"], m["successes"]) for m in report.current.by_model}
    assert models == {"gpt-4o": (1, 6_000_000, 1), "gpt-4o-mini": (5, 11_000_000, 2)}
    [template] = report.current.by_template
    assert (template["prompt_template"], template["prompt_version"], template["items"], template["successes"]) == (
        "catalogue-item",
        "1",
        4,
        3,
    )
    rows = {r["metric"]: r for r in report.rows()}
    assert rows["cost_usd"]["change"] == "+$0.0140 (+466.7%)" and rows["tokens_in"]["this period"] == "600"


def test_the_days_charted_and_the_stored_charts(ledger: Store) -> None:
    report = build_report(ledger, "kpi", "daily", NOW)
    days = {str(d["day"]): (d["items"], d["successes"]) for d in report.days.to_dicts()}
    assert days == {"2026-11-18": (2, 1), "2026-11-19": (4, 3), "2026-11-20": (1, 1)}
    files = write_report(ledger, report)
    for name in ("cost-and-successes", "success-rate", "rejects-by-reason"):
        png = ledger.get(files[name])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
        assert struct.unpack(">II", png[16:24]) == (WIDTH_PX, HEIGHT_PX)
        assert f"- {name}: `{ledger.url}/{files[name]}`" in ledger.get(files["markdown"]).decode()
    stored = json.loads(ledger.get(files["json"]))
    assert stored["current"]["items_attempted"] == 4 and stored["prior"]["success_rate"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", ["report", "template-rank"])
def test_report_and_template_rank_write_nothing_to_a_read_only_store(ledger: Store, name: str) -> None:
    """Under EVIDENCE_ONLY (read-only) the report is built but not stored, and no ranking decision is recorded:
    the one core command both front doors run (the flow used to store either way)."""
    from content_pipeline.commands.catalogue import CATALOGUE
    from content_pipeline.commands.context import Context
    from content_pipeline.run.reporter import PlainReporter
    from content_pipeline.settings import load_settings
    from tests.conftest import snapshot

    before = snapshot(ledger)
    settings = load_settings(store_url=ledger.url, evidence_only=True)
    command = CATALOGUE[name]
    outcome = command.fn(Context(name, settings, PlainReporter(), None), command.params())  # type: ignore[arg-type]
    assert outcome.ok and outcome.lines
    assert snapshot(ledger) == before
    if name == "report":
        assert outcome.summary.endswith("not stored (the store is read-only)")
