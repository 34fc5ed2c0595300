"""Intent before spend: each call is announced in the intents log, durable, before it is sent; its outcome
settles it. After a crash the calls no outcome settled are booked at their worst case and shown as "in
flight at the crash" in status and the next report, so the books are never lower than the invoice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from content_pipeline.ledger.inflight import booked_at_crash
from content_pipeline.ledger.intents import IntentLog
from content_pipeline.ledger.records import new_record_id
from content_pipeline.ledger.scan import read_records
from content_pipeline.ops.damaged import accept
from content_pipeline.ops.status import status
from content_pipeline.store import Store, layout
from content_pipeline.store.host import Holder, this_host
from content_pipeline.store.lease import Lease
from content_pipeline.views.audit import audit
from content_pipeline.views.consolidate import consolidate
from content_pipeline.views.snapshot import read_usage, views_current
from tests.conftest import make_item
from tests.support.helpers import books, fake_llm, invoice, run

ROOT = Path(__file__).resolve().parents[3]


def dead_writer() -> str:
    """A writer name whose process has ended (a crashed run's)."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return f"{this_host()}-{ended.pid}-0badc0de"


def announce(store: Store, run_id: str, writer: str, worst: list[int]) -> IntentLog:
    """An intents log of `writer` with one call going out per entry of `worst` (its worst case in nano-USD)."""
    log = IntentLog(store, run_id, writer)

    async def going_out() -> None:
        for n, nano in enumerate(worst):
            await log.going_out(new_record_id(), 1, f"item-{n:04d}", "gpt-4o-mini", nano)

    asyncio.run(going_out())
    return log


def test_a_clean_run_settles_every_intent_and_leaves_no_log(make_settings, store: Store) -> None:
    with fake_llm("sk-clean", latency_ms=5) as server:
        settings = make_settings(openai_api_key="sk-clean", openai_base_url=server.url, concurrency=4)
        report = run(settings, store)
        billed = invoice(server)
    assert report.ok and report.stats.successes == 20, report.failure
    assert store.list(layout.INTENTS_PREFIX) == []  # every intent settled by its record: the log removed
    assert "in flight at the crash" not in report.markdown()
    seen = status(store, settings.catalogue)
    assert seen["in_flight_at_crash"] == {"calls": 0, "usd": 0.0, "by_run": {}}
    assert books(store)[0] == read_usage(store)["cost_nano"] >= billed > 0


def test_an_error_answer_without_a_record_settles_its_intent(make_settings, store: Store) -> None:
    with fake_llm("sk-right") as server:  # a key that does not work: 401, which costs nothing
        settings = make_settings(openai_api_key="sk-wrong", openai_base_url=server.url, concurrency=3)
        report = run(settings, store)
    assert not report.ok and "rejected the API key (401)" in str(report.failure)
    assert read_records(store) == []
    assert store.list(layout.INTENTS_PREFIX) == []  # each call voided, so nothing is booked
    consolidate(store)
    assert booked_at_crash(store, read_usage(store)).calls == 0


def test_intents_of_a_live_run_are_in_flight_and_of_a_gone_one_booked(store: Store) -> None:
    me = f"{this_host()}-{os.getpid()}-live0001"
    lease = Lease(store, layout.run_lock("live"), Holder.me("live"), 60, "run live")
    lease.acquire()
    try:
        live = announce(store, "live", me, [1000, 2000])
        crashed = announce(store, "crashed", dead_writer(), [500, 700, 900])
        consolidate(store)
        usage = read_usage(store)
        assert {(u["run_id"], u["calls"], u["nano"]) for u in usage["unsettled"]} == {
            ("live", 2, 3000),
            ("crashed", 3, 2100),
        }
        booked = booked_at_crash(store, usage)
        assert booked.by_run == {"crashed": (3, 2100)}  # the live run's calls are in flight, not crashed
        assert booked.line().startswith("in flight at the crash: 3 call(s) (crashed 3)")
    finally:
        lease.release()
    assert booked_at_crash(store, read_usage(store)).by_run == {"live": (2, 3000), "crashed": (3, 2100)}
    live.close(keep=True)
    crashed.close(keep=True)


def test_a_crash_log_makes_the_views_stale_and_status_books_it_at_once(store: Store, write_catalogue) -> None:
    catalogue = write_catalogue([make_item(1)], "one.jsonl")
    consolidate(store)
    assert views_current(store)
    announce(store, "crashed", dead_writer(), [400, 600]).close(keep=True)
    assert not views_current(store)  # the intents logs are part of what the views were built from
    seen = status(store, catalogue)
    assert seen["in_flight_at_crash"]["calls"] == 2 and seen["spend_usd"] == 1000 / 1e9
    consolidate(store)
    assert views_current(store) and status(store, catalogue)["in_flight_at_crash"] == seen["in_flight_at_crash"]


def test_a_damaged_intent_line_is_kept_aside_and_named_until_the_operator_accepts_it(store: Store) -> None:
    log = announce(store, "crashed", dead_writer(), [400, 600])
    log.close(keep=True)
    info = store.list(layout.INTENTS_PREFIX)[0]  # the log's first line (on S3 each append is an object)
    data = store.get(info.key) or b""
    store.put(info.key, data.replace(b'"worst_nano":400', b'"worst_nano":4', 1))
    consolidate(store)
    result = audit(store)
    where = f"{info.key}: line 1"
    assert result.violations == [
        f"invariant 6: {where} fails its checksum (changed since it was written); kept in "
        f"{layout.damaged_record(info.key, 0)}; an intent whose call cannot be booked at its worst case: check "
        f"the provider's invoice, then `content-pipeline quarantine --accept-loss '{where}'`"
    ]
    assert store.get(layout.damaged_record(info.key, 0)) is not None  # its bytes kept aside
    assert [d.where for d in accept(store, where)] == [where]
    again = audit(store)
    assert again.ok and any(n.startswith(f"{where} fails its checksum") for n in again.notes)


@pytest.mark.slow  # a go-live process, killed mid-flight, and the resumed run
def test_calls_in_flight_at_a_sigkill_are_booked_and_the_resumed_run_counts_them(
    store_url: str, store: Store, tmp_path: Path, write_catalogue
) -> None:
    catalogue = write_catalogue([make_item(n) for n in range(1, 21)], "killed.jsonl")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_", "PREFECT_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PYTHONPATH=str(ROOT),
        CATALOGUE=catalogue,
        STORE_URL=store_url,
        OPENAI_API_KEY="sk-killed",
        CONCURRENCY="5",
    )
    cli = [sys.executable, "-m", "cli.main", "go-live", "--run-id", "killed", "--budget-usd", "10"]
    with fake_llm("sk-killed", latency_ms=60_000) as slow:  # no answer comes before the kill
        proc = subprocess.Popen([*cli], env={**env, "OPENAI_BASE_URL": slow.url}, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while slow.stats()["in_flight"] < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert slow.stats()["in_flight"] == 5
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    recorded, booked = books(store)
    assert read_records(store) == [] and booked.by_run["killed"][0] == 5 and recorded == booked.nano > 0
    seen = status(store, catalogue)
    assert seen["in_flight_at_crash"]["by_run"] == {"killed": {"calls": 5, "usd": booked.nano / 1e9}}
    assert seen["spend_usd"] == booked.nano / 1e9

    with fake_llm("sk-killed") as fast:
        resumed = subprocess.run(
            cli, env={**env, "OPENAI_BASE_URL": fast.url}, capture_output=True, text=True, timeout=300
        )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = (store.get(layout.run_key("killed", layout.REPORT)) or b"").decode()
    assert "in flight at the crash: 5 call(s) (killed 5) whose answers never reached the ledger" in report
    spent = float(report.split("- spend: $")[1].split(" ")[0])  # the run's budget counted its crashed calls
    assert spent == pytest.approx((booked.nano + read_usage(store)["cost_nano"]) / 1e9, abs=1e-4)
    shown = subprocess.run(
        [sys.executable, "-m", "cli.main", "status", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    final = json.loads(shown.stdout)
    assert final["in_flight_at_crash"]["calls"] == 5 and final["done"] == 20
