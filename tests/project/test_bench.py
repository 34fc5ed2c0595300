"""A smoke run of `make bench` at tiny sizes: every scenario runs and reports its figures (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_every_benchmark_scenario_runs_and_reports(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, "BENCH_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    by = {(x.get("scenario"), x.get("form")) for x in lines}
    forms = ("bare_asyncio", "generate_stage", "core_generate_stage", "task_per_item", "tool_process", "cli_go_live")
    assert {("1-throughput", f) for f in (*forms, "ratios")} <= by
    assert {("2-bookkeeping", None), ("3-durable-appends", None), ("4-go-live", "direct"), ("5-start-up", None)} <= by
    for form in ("generate_stage", "core_generate_stage", "cli_go_live"):  # the split of the wall time
        stage = next(x for x in lines if x.get("form") == form)
        assert 0 < stage["first_call_to_last_answer_s"] <= stage["seconds"], stage
    cli = next(x for x in lines if x.get("form") == "cli_go_live")
    assert 0 < cli["start_to_first_request_s"] < cli["seconds"]
    start = next(x for x in lines if x.get("scenario") == "5-start-up")
    assert start["status_s"] > 0 and start["nothing_to_do_direct_s"] > 0 and start["first_request_direct_s"] > 0
    figures = {x["scenario"]: x for x in lines[1:] if x.get("form") in (None, "ratios", "direct")}
    assert figures["2-bookkeeping"]["records"] == 2000 and figures["2-bookkeeping"]["peak_rss_mb"] > 0
    kept = [x for x in lines if x.get("scenario") == "2-bookkeeping"]
    assert [(x["records"], x["slugs"]) for x in kept] == [(2000, 2000), (2000, 200)]
    assert all(x["consolidate_peak_rss_mb"] > 0 and x["consolidate_alone_s"] > 0 for x in kept)
    assert figures["3-durable-appends"]["ledger_appends_per_s"] > 0
    assert "generated: 30 (30 successes" in figures["4-go-live"]["generated"]
    assert "| scenario | measurement | figure | target met |" in done.stdout
