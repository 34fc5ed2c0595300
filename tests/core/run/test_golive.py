"""The go-live sequence of the core, server-free, as the CLI runs it without a Prefect server: the stages in
order, periodic consolidation, claims renewed under a long run, the budget stop, a failing final audit,
stage retries, and a bug that fails the run instead of becoming a reject."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from content_pipeline.claims.queue import judge, read_queue
from content_pipeline.errors import BadInputError, StoreIOError
from content_pipeline.ledger.scan import read_records
from content_pipeline.run import reporter as reporter_module
from content_pipeline.run.golive import go_live
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import PlainReporter
from content_pipeline.store import Store, layout
from content_pipeline.store.lease import held_leases
from content_pipeline.views.snapshot import read_checkpoint
from tests.conftest import make_item
from tests.support.helpers import record, run, write_ledger

T = TypeVar("T")


class Recording(PlainReporter):
    """The plain reporter, keeping what the run told it (the interface is ours: nothing external is faked)."""

    def __init__(self) -> None:
        super().__init__()
        self.stages: list[str] = []
        self.progress_calls: list[tuple[int, int]] = []
        self.published: list[tuple[RunReport, list[dict[str, str]]]] = []

    def stage(self, name: str, body: Callable[[], T]) -> T:
        self.stages.append(name)
        return super().stage(name, body)

    def progress(self, done: int, total: int, line: str) -> None:
        self.progress_calls.append((done, total))

    def publish(self, report: RunReport, rejects: list[dict[str, str]]) -> None:
        self.published.append((report, rejects))


def test_every_stage_runs_in_order_and_one_report_is_published_and_stored(make_settings, store: Store) -> None:
    settings = make_settings(chunk_size=5)
    reporter = Recording()
    report = go_live(settings, store, reporter)
    assert report.ok and report.audit_ok and report.failure is None
    assert reporter.stages == [
        "sweep",
        "inventory",
        "batch",
        "preflight",
        "release-claims",
        "consolidate",
        "audit",
        "sync",
        "audit",
    ]
    assert reporter.progress_calls[0] == (0, 4) and reporter.progress_calls[-1] == (4, 4)
    [(published, rejects)] = reporter.published
    assert published is report and rejects == []
    assert store.get(layout.run_key(report.run_id, layout.REPORT)).decode() == report.markdown()
    assert "generated: 20 (20 successes, 0 rejects" in report.markdown() and "audit: green" in report.markdown()
    assert read_queue(store)[0]["runs"] == {}  # claims released
    assert held_leases(store) == {}  # the run's own lease and the batch builder's released
    again = go_live(make_settings(), store, Recording())
    assert again.ok and again.stats.calls == 0 and again.spend_usd == 0


def test_a_consolidation_runs_every_n_successes_while_generating(make_settings, store: Store) -> None:
    settings = make_settings(consolidate_every=10, chunk_size=5, concurrency=5, offline_latency_ms=100)
    report = run(settings, store)
    telemetry = [json.loads(x) for x in store.read_appended(layout.TELEMETRY).decode().splitlines()]
    during = [t for t in telemetry if 0 < t["successes"] < 20]
    assert during, telemetry  # at least one consolidation while generating
    assert telemetry[-1]["successes"] == 20
    assert report.ok and report.consolidations >= len(during) + 1  # the periodic ones and the final one


def test_the_claims_of_a_long_run_live_with_its_renewed_lease_and_never_expire_under_it(
    make_settings, store: Store
) -> None:
    settings = make_settings(lease_ttl_s=0.9, concurrency=2, chunk_size=5, offline_latency_ms=300)  # about 3 s
    seen: list[tuple[float, float, str | None]] = []  # (when, the claims' expiry then, why they were gone)
    done: list[RunReport] = []
    runner = threading.Thread(target=lambda: done.append(run(settings, store)))
    runner.start()
    while runner.is_alive():
        entry = read_queue(store)[0].get("runs", {}).get(settings.run_id)
        if entry is not None:
            now = time.time()
            claims = judge(store, settings.run_id, entry, now)
            seen.append((now, claims.until, claims.gone))
        time.sleep(0.05)
    runner.join()
    [report] = done
    assert report.ok and report.stats.successes == 20
    assert seen and seen[-1][0] - seen[0][0] > 2 * settings.lease_ttl_s  # the run outlived its lease's lifetime
    assert all(gone is None for _, _, gone in seen), "the claims of a live run were judged gone"
    assert all(expires > when for when, expires, _ in seen), "the claims of a live run expired"
    assert len({expires for _, expires, _ in seen}) >= 3  # renewed, more than once
    assert read_queue(store)[0]["runs"] == {}


def test_the_budget_stop_ends_the_run_green_and_leaves_the_rest_claimable(make_settings, store: Store) -> None:
    settings = make_settings(budget_usd=0.0012, min_item_cost_usd=0, concurrency=4, chunk_size=5)
    report = run(settings, store)
    spent = sum(r.cost_usd for r in read_records(store))
    assert 0 < spent <= 0.0012
    assert report.stop_reason and "run budget $0.0012 reached" in report.stop_reason
    assert report.ok and report.audit_ok  # stopping at the budget is not a failure
    assert f"stopped early: {report.stop_reason}" in store.get(layout.run_key(report.run_id, layout.REPORT)).decode()
    assert report.stats.not_attempted > 0
    generated = report.stats.successes + report.stats.rejects
    assert generated + report.stats.not_attempted == 20
    assert read_checkpoint(store)["queued"] == {}  # released: the next run can take them
    follow = run(make_settings(), store)
    assert follow.stats.successes == 20 - generated


def test_a_failing_final_audit_fails_the_run_and_names_the_stage(make_settings, store: Store) -> None:
    from content_pipeline.generation.prompts import input_hash
    from content_pipeline.generation.templates import DEFAULT
    from content_pipeline.intake.catalogue import Item

    generated_from = input_hash(Item(**make_item(1)), DEFAULT, "gpt-4o-mini")  # the item as it is: not changed
    bad = record("item-0001", input_hash=generated_from).model_copy(
        update={"error": "Traceback (most recent call last)"}
    )
    write_ledger(store, [bad])  # a success carrying an error: consolidation keeps it, the audit must fail
    report = run(make_settings(), store)
    assert not report.ok and report.audit_ok is False
    assert report.failure is not None and report.failure.startswith(
        "audit: audit failed: 2 violation(s); first: invariant 1: 1 ledger success(es) carry an error: item-0001"
    )
    assert report.audit_violations[1] == "invariant 1: 1 master success(es) carry an error: item-0001"
    assert report.failure.endswith(f"(spent ${report.spend_usd:.4f} of $250.00)") and report.spend_usd > 0
    stored = store.get(layout.run_key(report.run_id, layout.REPORT)).decode()
    assert "audit: FAILED" in stored and "## Audit violations" in stored
    assert report.stats.successes == 19  # item-0001 counts as done: nothing is paid for twice
    assert read_queue(store)[0]["runs"] == {} and held_leases(store) == {}


def test_a_failed_stage_is_named_and_its_claims_and_lease_are_released(make_settings, store: Store) -> None:
    report = run(make_settings(budget_usd=0.01), store)
    assert report.failure is not None and report.failure.startswith("preflight: budget too low for batch size")
    assert report.stats.calls == 0 and store.list(layout.LEDGER_PREFIX) == []
    assert read_queue(store)[0]["runs"] == {} and held_leases(store) == {}


def test_a_stage_retries_transient_store_errors_and_nothing_else(monkeypatch, caplog) -> None:
    waits: list[float] = []
    monkeypatch.setattr(reporter_module.time, "sleep", waits.append)
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise StoreIOError("S3 put ledger/x failed: SlowDown")
        return "done"

    with caplog.at_level(logging.WARNING, logger="content_pipeline"):
        assert PlainReporter().stage("consolidate", flaky) == "done"
    assert calls["n"] == 3 and waits == [1, 2]
    assert "consolidate: S3 put ledger/x failed: SlowDown; trying again in 1 s" in caplog.text

    def always() -> Any:
        calls["n"] += 1
        raise StoreIOError("disk gone")

    calls["n"] = 0
    with pytest.raises(StoreIOError):
        PlainReporter().stage("sync", always)
    assert calls["n"] == 1 + len(reporter_module.STORE_RETRY_DELAYS_S)

    def bad_input() -> Any:
        calls["n"] += 1
        raise BadInputError("catalogue /nowhere: file not found")

    calls["n"] = 0
    with pytest.raises(BadInputError):
        PlainReporter().stage("inventory", bad_input)
    assert calls["n"] == 1  # bad input is never retried


def test_a_bug_fails_the_run_loudly_instead_of_becoming_a_reject(make_settings, store: Store, monkeypatch) -> None:
    from content_pipeline.llm import client

    def broken(response: object, pacer: object) -> Any:
        raise TypeError("a bug in reading the answer")

    monkeypatch.setattr(client, "_completion", broken)
    with pytest.raises(TypeError, match="a bug in reading the answer"):
        run(make_settings(), store)
    assert read_records(store) == []  # no item was rejected (and made retryable) because of our own bug
    assert read_queue(store)[0]["runs"] == {} and held_leases(store) == {}


def test_a_budget_for_30_percent_of_the_items_at_concurrency_50_is_spent_to_95_percent_and_never_over(
    make_settings, write_catalogue, store: Store
) -> None:
    # the 1,500-item go-live: its budget is 40-odd worst-case calls, so the last one that fits ends
    # within 5% of it (the guard is off: the budget covers 30% of the items, not the batch's worst case)
    catalogue = write_catalogue([make_item(n) for n in range(1, 1521)], "fifteen-hundred.jsonl")
    probe = run(make_settings(catalogue=catalogue, limit=20), store)  # what an item really costs here
    per_item = probe.spend_usd / probe.stats.successes
    budget = round(0.3 * 1500 * per_item, 6)
    settings = make_settings(
        catalogue=catalogue, limit=1500, budget_usd=budget, min_item_cost_usd=0, concurrency=50, offline_latency_ms=20
    )
    report = run(settings, store)
    spent = sum(r.cost_usd for r in read_records(store) if r.run_id == settings.run_id)
    assert report.ok and report.audit_ok
    assert 0.95 * budget <= spent <= budget, f"spent {spent / budget:.1%} of the budget"
    assert report.stop_reason and report.stop_reason.startswith(f"run budget ${budget:.4f} reached")
    assert report.stats.decided + report.stats.not_attempted == 1500  # everything else left claimable
    assert f"of ${budget:.4f} budget ({spent / budget:.1%} used)" in report.markdown()
