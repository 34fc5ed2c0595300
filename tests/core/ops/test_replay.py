"""replay-failed generates again exactly the transient rejects of its window (QA and content-policy ones
only when asked), nothing else, under its own budget; each reject's cause is read off its record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from content_pipeline.ledger.scan import read_records
from content_pipeline.ledger.spend import stamp
from content_pipeline.ops.outcomes import cause
from content_pipeline.ops.replay import ReplayWindow, replay_failed
from content_pipeline.run.reporter import PlainReporter
from content_pipeline.store import Store, open_store
from content_pipeline.views.consolidate import consolidate
from tests.conftest import make_item
from tests.support.helpers import record, write_ledger

NOW = datetime.now(UTC)
RECENT, OLD = stamp(NOW - timedelta(hours=2)), stamp(NOW - timedelta(hours=30))


def reject(slug: str, reason: str, error: str, retryable: bool, at: str = RECENT, run: str = "run-1"):
    return record(slug, "reject", run=run, at=at, reason=reason, error=f"{reason}: {error}", retryable=retryable)


TRANSIENT = {
    "item-0001": reject("item-0001", "provider_error", "rate limited (429)", True),
    "item-0002": reject("item-0002", "provider_error", "timed out after 60s", True),
    "item-0003": reject("item-0003", "provider_error", "provider error 503: overloaded", True),
    "item-0004": reject("item-0004", "provider_error", "connection to api.example failed (reset)", True),
    "item-0005": reject("item-0005", "budget", "the run's budget is spent", True),
    "item-0006": reject(
        "item-0006", "length", "description has 12 characters; escalation stopped: insufficient_quota", True
    ),
}
QA = {
    "item-0007": reject("item-0007", "length", "description has 12 characters", False),
    "item-0008": reject("item-0008", "refusal", "I cannot help with that", False),
}
OTHERS = [
    reject("item-0009", "provider_error", "rate limited (429)", True, at=OLD),  # outside the window
    reject("item-0010", "provider_error", "timed out after 60s", True),  # ... and a later success
    record("item-0010", run="run-2", at=stamp(NOW - timedelta(hours=1))),
    record("item-0011", at=RECENT),
    reject("item-0012", "provider_error", "provider error 400: bad request", False),  # not transient
]


@pytest.fixture
def ledger(make_settings, write_catalogue, store: Store):
    write_ledger(store, [*TRANSIENT.values(), *QA.values(), *OTHERS])
    consolidate(store)
    catalogue = write_catalogue([make_item(n) for n in range(1, 21)])  # 13-20: never attempted
    return store, lambda **kw: make_settings(catalogue=catalogue, **kw)


def generated(store: Store, run_id: str) -> set[str]:
    return {r.slug for r in read_records(store) if r.run_id == run_id}


def test_each_reject_has_its_cause() -> None:
    frame = pl.DataFrame(
        [r.model_dump(include={"status", "reason", "error", "retryable"}) for r in [*TRANSIENT.values(), *QA.values()]]
    )
    causes = frame.select(cause())["cause"].to_list()
    assert causes == ["rate_limit", "timeout", "server_error", "connection", "budget", "quota", "qa", "content_policy"]


def test_replay_generates_exactly_the_windows_transient_rejects_under_its_budget(ledger) -> None:
    store, settings = ledger
    report = replay_failed(settings(budget_usd=2.0, run_id="replay-1"), store, PlainReporter(), ReplayWindow(24))
    assert report.ok, report.failure
    assert generated(store, "replay-1") == set(TRANSIENT)
    assert report.notes[0].startswith("replay-failed: 6 transient reject(s) of the last 24 h (budget 1, connection 1")
    assert {r.run_budget_usd for r in read_records(store) if r.run_id == "replay-1"} == {2.0}
    assert 0 < report.spend_usd <= 2.0

    qa = replay_failed(settings(budget_usd=2.0, run_id="replay-2"), store, PlainReporter(), ReplayWindow(24, True))
    assert qa.ok and generated(store, "replay-2") == set(QA)  # the transient ones succeeded in replay-1
    wider = replay_failed(settings(run_id="replay-3"), store, PlainReporter(), ReplayWindow(48))
    assert wider.ok and generated(store, "replay-3") == {"item-0009"}


def test_a_replay_whose_budget_cannot_cover_its_rejects_is_refused_before_any_spend(ledger) -> None:
    store, settings = ledger
    before = len(read_records(store))
    report = replay_failed(settings(budget_usd=0.01, run_id="poor"), store, PlainReporter(), ReplayWindow(24))
    assert not report.ok and report.failure.startswith("preflight: budget too low for batch size: batch size 6 items")
    assert len(read_records(store)) == before


@pytest.mark.slow  # runs the command line as processes
def test_the_replay_command(ledger, tmp_path) -> None:
    from tests.support.cli_helpers import base_env
    from tests.support.cli_helpers import run as cli

    store, settings = ledger
    env = {**base_env(tmp_path), "STORE_URL": store.url, "CATALOGUE": settings().catalogue}
    done = cli(env, "replay-failed", "--since-hours", "24", "--budget-usd", "5", "--run-id", "cli-replay")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "replay-failed: 6 transient reject(s) of the last 24 h" in done.stdout
    assert generated(open_store(store.url), "cli-replay") == set(TRANSIENT)
    bad = cli(env, "replay-failed", "--since-hours", "0")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: replay-failed --since-hours 0: Input should be greater than 0"
    ]
