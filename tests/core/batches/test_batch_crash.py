"""Batch mode killed with SIGKILL at each step (after the upload, after the batch was created and before it was
recorded, while collect polls, while collect appends the results), then resumed by `collect`: the provider saw
exactly one batch per planned batch of the run, no outcome is twice in the ledger, no success is lost. The
`content-pipeline` command in a process of its own, the fake provider's Files and Batches API over HTTP."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.ledger.scan import read_records
from content_pipeline.store import layout, open_store
from content_pipeline.views.audit import audit
from tests.conftest import make_item
from tests.support.cli_helpers import CLI, base_env, run
from tests.support.helpers import fake_llm

pytestmark = [pytest.mark.slow]
ITEMS = 20


@pytest.fixture
def batch_env(tmp_path: Path, write_catalogue) -> dict[str, str]:
    env = base_env(tmp_path)
    env.update(
        STORE_URL=str(tmp_path / "batch-store"),
        CATALOGUE=write_catalogue([make_item(n) for n in range(1, ITEMS + 1)], "batch-catalogue.jsonl"),
        OPENAI_API_KEY="sk-crash",
        GENERATION_MODE="batch",
    )
    return env


def kill_when(env: dict[str, str], args: list[str], ready: Callable[[], bool], within_s: float = 60) -> None:
    """Start the command, SIGKILL it once `ready()` holds (checked every 20 ms, for `within_s` at most)."""
    process = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + within_s
    try:
        while not ready():
            assert process.poll() is None, f"it ended before the step: {process.stderr.read().decode()[-800:]}"
            assert time.monotonic() < deadline, "the step was never reached"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)


def settled(env: dict[str, str], server: Any, run_id: str) -> None:
    """Resume with collect; then one batch was created, each item has one success, nothing is twice."""
    server.config.stall, server.config.file_line_delay_s = {}, 0.0
    resumed = run(env, "collect")
    assert resumed.returncode == 0, resumed.stderr
    assert "1 batch(es) settled" in resumed.stdout, resumed.stdout
    store = open_store(env["STORE_URL"])
    records = read_records(store)
    assert server.stats()["batches_created"] == 1  # exactly one per planned batch of the run
    assert len({r.id for r in records}) == len(records) == ITEMS  # no outcome twice
    assert {r.slug for r in records if r.status == "success"} == {f"item-{n:04d}" for n in range(1, ITEMS + 1)}
    assert {r.run_id for r in records} == {run_id}
    assert audit(store).ok
    assert run(env, "collect").stdout.startswith("collect: 0 batch(es) settled")  # and again: nothing more


@pytest.mark.parametrize("step", ["uploaded", "created"])
def test_go_live_killed_after_the_upload_or_after_the_create_is_resumed_by_collect(batch_env, step: str) -> None:
    with fake_llm("sk-crash", stall={step: 60}) as server:
        env = {**batch_env, "OPENAI_BASE_URL": server.url}
        done: Callable[[], bool] = (
            (lambda: server.stats()["files"] >= 1)
            if step == "uploaded"
            else (lambda: server.stats()["batches_created"] >= 1)
        )
        kill_when(env, ["go-live", "--run-id", f"killed-{step}"], done)
        assert server.stats()["batches_created"] == (0 if step == "uploaded" else 1)
        store = open_store(env["STORE_URL"])
        assert store.get(layout.batch_key(f"killed-{step}", "0001", layout.BATCH_SUBMITTED)) is None  # not recorded
        settled(env, server, f"killed-{step}")


def test_collect_killed_while_it_polls_is_resumed(batch_env) -> None:
    with fake_llm("sk-crash") as server:
        env = {**batch_env, "OPENAI_BASE_URL": server.url}
        assert run(env, "go-live", "--run-id", "polled").returncode == 0
        shown = run(env, "status").stdout.splitlines()
        assert any(x.startswith("batches_outstanding") and x.endswith("  1") for x in shown), shown
        assert any("polled/0001 (batch_" in x and "20 request(s), 0.0 h old" in x for x in shown), shown
        server.config.stall = {"retrieve": 60}
        kill_when(env, ["collect"], lambda: server.stats()["batch_retrieves"] >= 1)
        assert read_records(open_store(env["STORE_URL"])) == []
        settled(env, server, "polled")


def test_collect_killed_while_it_appends_the_results_is_resumed(batch_env) -> None:
    with fake_llm("sk-crash", file_line_delay_s=0.15) as server:
        env = {**batch_env, "OPENAI_BASE_URL": server.url}
        assert run(env, "go-live", "--run-id", "appending").returncode == 0
        store = open_store(env["STORE_URL"])
        kill_when(env, ["collect"], lambda: len(read_records(store)) >= 3)
        partial = len(read_records(store))
        assert 3 <= partial < ITEMS  # killed with some of the outcomes appended, not all
        settled(env, server, "appending")
