"""The `content-pipeline` command as an operator runs it, and go-live killed with SIGKILL mid-generation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from content_pipeline.audit import audit
from content_pipeline.ledger import OutcomeRecord, scan_ledger
from content_pipeline.store import open_store
from content_pipeline.views import read_master
from tests.conftest import make_item, snapshot

pytestmark = [pytest.mark.server, pytest.mark.slow]
CLI = [sys.executable, "-m", "flows.cli"]


@pytest.fixture
def cli_env(prefect_server, tmp_path, write_catalogue) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_"))}
    env.update(
        PREFECT_API_URL=prefect_server,
        STORE_URL=str(tmp_path / "cli-store"),
        CATALOGUE=write_catalogue([make_item(n) for n in range(1, 201)], "cli-catalogue.jsonl"),
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    return env


def run(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env={**env, **extra}, capture_output=True, text=True, timeout=300)


def test_status_json_after_go_live(cli_env) -> None:
    assert run(cli_env, "go-live", "--limit", "50", "--budget-usd", "20").returncode == 0
    result = run(cli_env, "status", "--json")
    assert result.returncode == 0
    status = json.loads(result.stdout)
    assert status["catalogue"] == 200 and status["done"] == 50 and status["needs_content"] == 150
    assert status["ledger_records"] == 50 and status["queued"] == 0 and status["rejected"] == 0
    assert 0 < status["spend_usd"] < 20 and status["views_current"] is True
    shown = run(cli_env, "view", "successes")
    records = [OutcomeRecord.model_validate_json(line) for line in shown.stdout.splitlines()]
    assert shown.returncode == 0 and len(records) == 50 and {r.status for r in records} == {"success"}
    slugs = run(cli_env, "view", "processed").stdout.split()
    assert slugs == sorted(r.slug for r in records)


@pytest.mark.parametrize(
    ("args", "extra", "code", "line"),
    [
        (
            ["go-live", "--limit", "0"],
            {},
            2,
            "error: setting LIMIT: Input should be greater than or equal to 1 (got 0)",
        ),
        (["go-live", "--run-id", "../x"], {}, 2, "error: RUN_ID '../x' is invalid"),
        (
            ["go-live"],
            {"CATALOGUE": "/nowhere/cat.jsonl"},
            1,
            "go-live failed: inventory: catalogue /nowhere/cat.jsonl: file not found",
        ),
        (
            ["go-live", "--budget-usd", "2"],
            {},
            1,
            "go-live failed: preflight: budget too low for batch size: batch size 195 items",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(cli_env, args, extra, code, line) -> None:
    store = open_store(cli_env["STORE_URL"])
    assert run(cli_env, "go-live", "--limit", "5").returncode == 0
    before = {k: v for k, v in snapshot(store).items() if not k.startswith(("runs/", "state/", "locks/"))}
    result = run(cli_env, *args, **extra)
    assert result.returncode == code
    errors = [x for x in result.stderr.splitlines() if x.startswith(("error:", "go-live failed:"))]
    assert len(errors) == 1 and errors[0].startswith(line), result.stderr[-2000:]
    after = {k: v for k, v in snapshot(store).items() if not k.startswith(("runs/", "state/", "locks/"))}
    assert after == before


def ledger_lines(store) -> int:
    return sum((store.get(i.key) or b"").count(b"\n") for i in store.list("ledger/") if i.key.endswith(".jsonl"))


def test_sigkill_mid_generation_loses_nothing_and_pays_nothing_twice(cli_env, store_url) -> None:
    cli_env = {**cli_env, "STORE_URL": store_url}
    cli_env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
    store = open_store(cli_env["STORE_URL"])
    proc = subprocess.Popen(
        [*CLI, "go-live", "--run-id", "killed-run"],
        env={**cli_env, "OFFLINE_LATENCY_MS": "150", "CONCURRENCY": "8", "CHUNK_SIZE": "20", "CONSOLIDATE_EVERY": "15"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while ledger_lines(store) < 40 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = scan_ledger(store).frame
    assert 40 <= before.height < 200, "the kill must land in the middle of generation"
    successes_before = set(before.filter(before["status"] == "success")["id"])

    result = run(cli_env, "go-live", "--run-id", "resumed-run")
    assert result.returncode == 0, result.stderr[-3000:]

    master = read_master(store, "successes")
    assert successes_before <= set(master["id"]), "a success that reached the ledger is missing from master"
    assert master["slug"].is_unique().all() and master.height == 200
    assert audit(store).ok, audit(store).violations
    after = scan_ledger(store).frame
    resumed = set(after.filter(after["run_id"] == "resumed-run")["slug"])
    assert not resumed & set(before["slug"]), "an item already in the ledger was generated again"
    assert len(resumed) + before.height == 200
