"""The Prefect flows against the session's test server: go-live, the stage flows, failures as Failed runs."""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName
from prefect.settings import PREFECT_API_URL

from content_pipeline.claims.queue import read_queue
from content_pipeline.ledger.scan import read_records
from content_pipeline.store import layout, open_store
from content_pipeline.store.host import Holder
from content_pipeline.store.lease import Lease
from content_pipeline.views.snapshot import read_checkpoint, read_view
from content_pipeline.views.swap import swap_views
from flows import pipeline
from tests.conftest import make_item, snapshot
from tests.support.helpers import run_logs

pytestmark = pytest.mark.server


@pytest.fixture
def env(prefect_server, monkeypatch, store_url, write_catalogue):
    """Point the flows' settings (read from the environment at the edge) at this test's store (a local
    folder or an S3 bucket: every test runs on both) and catalogue."""
    monkeypatch.setenv("STORE_URL", store_url)
    monkeypatch.setenv("CATALOGUE", write_catalogue([make_item(n) for n in range(1, 31)] + [b"{broken"]))
    return open_store(store_url)


def test_go_live_completes_with_a_green_audit_and_a_report(env) -> None:
    state = pipeline.go_live(run_id="flow-run-1", return_state=True)
    assert state.is_completed(), state.message
    assert state.message == "all invariants hold"
    report = env.get(layout.run_key("flow-run-1", "report.md")).decode()
    assert "generated: 30 (30 successes, 0 rejects" in report
    assert "catalogue: 31 rows, 30 valid, 1 invalid" in report
    assert "offline model" in report and "audit: green" in report
    artifact = Artifact.get("go-live-report")
    assert artifact is not None and "flow-run-1" in artifact.data
    again = pipeline.go_live(run_id="flow-run-2", return_state=True)
    assert again.is_completed()
    assert "spend: $0.0000" in env.get(layout.run_key("flow-run-2", "report.md")).decode()


def test_go_live_reports_its_store_requests(env, backend) -> None:
    assert pipeline.go_live(run_id="counted", return_state=True).is_completed()
    report = env.get(layout.run_key("counted", "report.md")).decode()
    if backend == "file":
        assert "S3 requests" not in report
        return
    line = next(x for x in report.splitlines() if x.startswith("- S3 requests: "))
    shown = re.search(r"PUTs per generated item outside consolidation: ([\d.]+) \(([^)]*)\)", line)
    assert shown is not None, line
    per_item, puts = float(shown[1]), {a: int(n) for a, n in (p.rsplit(" ", 1) for p in shown[2].split(", "))}
    records = [r for r in read_records(env) if r.run_id == "counted"]
    calls = sum(len(r.calls) for r in records)
    assert len(records) == 30 and calls == 30, (len(records), calls)
    assert per_item == float(f"{sum(puts.values()) / len(records):.2f}"), line
    # the README: at most one PUT per generated item is its ledger record, at most one per call its intent
    # (lines written together share one object); claims, leases and run files are a fixed cost per run
    assert 1 <= puts["ledger"] <= len(records), line
    assert 1 <= puts["intents"] <= calls, line


def test_budget_refusal_fails_the_run_before_any_spend(env) -> None:
    state = pipeline.go_live(budget_usd=0.05, run_id="too-poor", return_state=True)
    assert state.is_failed()
    assert state.message.startswith(
        "preflight: budget too low for batch size: batch size 30 items, budget $0.0500, minimum needed $0.3"
    )  # 30 items at about a cent each, the worst case of a call to gpt-4o-mini and one to gpt-4o
    assert "(the batch's worst case, $0.01" in state.message
    assert state.message.endswith(" on gpt-4o-mini, plus an escalation on gpt-4o) (spent $0.0000 of $0.0500)")
    assert env.list(layout.LEDGER_PREFIX) == []
    assert read_queue(env)[0]["runs"] == {}  # its claims were released
    assert "stopped early: budget too low" in env.get(layout.run_key("too-poor", "report.md")).decode()


def test_a_budget_refusal_is_one_line_in_the_run_log_with_no_traceback(env) -> None:
    state = pipeline.go_live(budget_usd=0.05, run_id="refused-quietly", return_state=True)
    assert state.is_failed() and state.message.startswith("preflight: budget too low for batch size")
    logs = run_logs(state)
    assert logs, "the run logged nothing on the server"
    engine = [m for _, m in logs if "Traceback" in m or "encountered an exception" in m]
    assert engine == []  # the engine's words for a bug, not for a refusal the run expects
    refusals = [m for _, m in logs if "budget too low for batch size" in m]
    assert refusals and all("\n" not in m for m in refusals), refusals


def test_the_heartbeat_reaches_the_run_log_and_the_progress_artifact(env, monkeypatch) -> None:
    monkeypatch.setenv("HEARTBEAT_S", "0.2")
    monkeypatch.setenv("OFFLINE_LATENCY_MS", "1500")  # generation lasts a few heartbeats
    state = pipeline.go_live(run_id="beating", return_state=True)
    assert state.is_completed(), state.message
    beats = [m for _, m in run_logs(state) if m.startswith("heartbeat: generate: ")]
    assert beats, "no heartbeat line reached the flow run's log"
    assert re.search(r"\d+/30 item\(s\).*ETA .*\$[0-9.]+ of \$[0-9.,]+ spent", beats[0]), beats[0]
    with get_client(sync_client=True) as client:
        flow_run_id = state.state_details.flow_run_id
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    progress = next(a for a in artifacts if a.key == "go-live-progress")
    assert progress.data == 100.0
    assert re.search(r"generate: 30/30 item\(s\) \(100%\).*ETA .*\$[0-9.]+ of \$[0-9.,]+ spent", progress.description)


def test_stage_flows_chain_like_the_runbook(env) -> None:
    run = "stages-1"
    for flow in (pipeline.inventory_flow, pipeline.batch_flow, pipeline.preflight_flow, pipeline.generate_flow):
        state = flow(run_id=run, limit=10, return_state=True)
        assert state.is_completed(), (flow.name, state.message)
    for flow in (pipeline.consolidate_flow, pipeline.audit_flow, pipeline.sync_flow, pipeline.audit_flow):
        state = flow(return_state=True)
        assert state.is_completed(), (flow.name, state.message)
    assert len(read_checkpoint(env)["done"]) == 10


def test_the_sweep_flow_names_each_release_in_its_state(env) -> None:
    from content_pipeline.claims.queue import claim
    from tests.support.helpers import dead_pid

    dead = dead_pid()
    claim(env, "crashed", ["item-0001", "item-0002"], 2, dead, 3600)
    dry = pipeline.sweep_flow(dry_run=True, return_state=True)
    assert dry.is_completed() and "2 claim(s) of run crashed" in dry.message and "would be released" in dry.message
    assert set(read_queue(env)[0]["runs"]) == {"crashed"}
    state = pipeline.sweep_flow(return_state=True)
    assert state.is_completed() and state.message.startswith("2 claim(s) of run crashed (pid ")
    assert read_queue(env)[0]["runs"] == {}


def test_the_health_and_report_flows_publish_artifacts(env) -> None:
    assert pipeline.go_live(run_id="before-ops", return_state=True).is_completed()
    health = pipeline.health_flow(return_state=True)  # the test server has no work pool: red, so Failed
    assert health.is_failed() and health.message == (
        f"health red: prefect: the server at {PREFECT_API_URL.value()} answers, but has no work pool 'content-pipeline'"
    )
    report = pipeline.report_flow(kind="cost", period="weekly", return_state=True)
    assert report.is_completed() and "COST report, weekly" in report.message
    with get_client(sync_client=True) as client:
        ids = [health.state_details.flow_run_id, report.state_details.flow_run_id]
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    keys = {a.key for a in artifacts}
    assert {"health", "cost-weekly-report", "cost-weekly-report-table"} <= keys
    charts = [i.key for i in env.list("reports/cost-weekly/") if i.key.endswith(".png")]
    assert len(charts) == 3
    with pytest.raises(Exception, match="kind"):  # the parameter's choices are checked before the run
        pipeline.report_flow(kind="nope")


def test_the_backup_and_restore_flows(env, tmp_path, monkeypatch) -> None:
    assert pipeline.go_live(run_id="before-backup", return_state=True).is_completed()
    monkeypatch.delenv("BACKUP_URL", raising=False)
    nowhere = pipeline.backup_flow(return_state=True)
    assert nowhere.is_failed() and nowhere.message == (
        "backup: no target: set BACKUP_URL or give one (--to URL; the flow's `to` parameter)"
    )
    done = pipeline.backup_flow(to=str(tmp_path / "backup"), return_state=True)
    assert done.is_completed() and " object(s) copied (" in done.message and ", 0 unchanged, to " in done.message, (
        done.message
    )
    restored = pipeline.restore_flow(dry_run=True, return_state=True)
    assert restored.is_completed() and restored.message == "nothing to restore: the views match the ledger"


def test_batch_flow_without_inventory_names_the_command(env) -> None:
    state = pipeline.batch_flow(run_id="no-inventory", return_state=True)
    assert state.is_failed()
    assert (
        state.message
        == "run no-inventory has no inventory output: run `content-pipeline inventory --run-id no-inventory` first"
    )


def test_held_lease_fails_the_batch_with_the_holder(env) -> None:
    pipeline.inventory_flow(run_id="blocked", return_state=True)
    with Lease(env, layout.BATCH_LOCK, Holder.me("other-run"), 60, "the batch builder"):
        state = pipeline.batch_flow(run_id="blocked", return_state=True)
    assert state.is_failed()
    assert state.message.startswith("the batch builder is already running: lease held by run other-run (pid ")


def test_audit_flow_fails_with_one_line_per_violation(env) -> None:
    assert pipeline.go_live(run_id="audited", limit=5, return_state=True).is_completed()
    master = read_view(env, "successes").decode().splitlines()
    swap_views(env, {"successes": ("\n".join(master + master[:1]) + "\n").encode()})
    state = pipeline.audit_flow(return_state=True)
    assert state.is_failed()
    assert state.message.startswith("invariant 2: slug(s) more than once in master successes: item-0001")


def test_evidence_only_go_live_writes_nothing_and_spends_nothing(env, monkeypatch) -> None:
    assert pipeline.go_live(run_id="before", limit=10, return_state=True).is_completed()
    before = snapshot(env)
    monkeypatch.setenv("EVIDENCE_ONLY", "1")
    state = pipeline.go_live(run_id="probe", return_state=True)
    assert state.is_completed(), state.message
    assert snapshot(env) == before


def test_consolidation_runs_every_n_successes_during_generation(env, monkeypatch) -> None:
    monkeypatch.setenv("CONSOLIDATE_EVERY", "10")
    monkeypatch.setenv("CHUNK_SIZE", "5")
    monkeypatch.setenv("CONCURRENCY", "5")
    monkeypatch.setenv("OFFLINE_LATENCY_MS", "100")  # about 0.6 s of generation: room for a consolidation
    assert pipeline.go_live(run_id="periodic", return_state=True).is_completed()
    telemetry = [json.loads(x) for x in env.read_appended(layout.TELEMETRY).decode().splitlines()]
    during = [t for t in telemetry if 0 < t["successes"] < 30]
    assert during, telemetry  # at least one consolidation while generating
    assert telemetry[-1]["successes"] == 30
    report = env.get(layout.run_key("periodic", "report.md")).decode()
    counted = int(report.split("consolidations: ")[1].split(";")[0])
    assert counted >= len(during) + 1  # periodic ones (some may change nothing) and the final one


def test_flows_use_the_blocks_that_exist(env, monkeypatch, tmp_path) -> None:
    from blocks import LLMConfig, StoreLocation

    elsewhere = tmp_path / "block-store"
    StoreLocation(url=str(elsewhere)).save("test-store-block", overwrite=True)
    LLMConfig(model="gpt-4.1-mini").save("test-llm-block", overwrite=True)
    monkeypatch.setenv("STORE_BLOCK", "test-store-block")
    monkeypatch.setenv("LLM_BLOCK", "test-llm-block")
    assert pipeline.go_live(run_id="via-blocks", limit=3, return_state=True).is_completed()
    report = open_store(str(elsewhere)).get(layout.run_key("via-blocks", "report.md")).decode()
    assert "model: gpt-4.1-mini" in report
    assert env.get(layout.run_key("via-blocks", "report.md")) is None  # STORE_URL was overridden
    monkeypatch.setenv("STORE_BLOCK", "no-such-block")
    assert pipeline.go_live(run_id="via-settings", limit=3, return_state=True).is_completed()
    assert env.get(layout.run_key("via-settings", "report.md")) is not None  # falls back to STORE_URL


def _chunk_runs(state) -> list:
    """The generate-chunk task runs of a finished flow run, once the server has their end times."""
    flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    chunks = TaskRunFilter(name=TaskRunFilterName(like_="generate-chunk"))
    with get_client(sync_client=True) as client:
        for _ in range(60):
            runs = client.read_task_runs(flow_run_filter=flow_runs, task_run_filter=chunks)
            if len(runs) == 3 and all(r.end_time for r in runs):
                return runs
            time.sleep(0.5)
    raise AssertionError(f"expected 3 finished chunk task runs, found {runs}")


def _overlap(runs: list) -> bool:
    spans = sorted((r.start_time, r.end_time) for r in runs)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def test_a_tag_limit_on_llm_generation_caps_chunks_across_runs(env, monkeypatch) -> None:
    monkeypatch.setenv("CHUNK_SIZE", "5")  # 15 items a run: 3 chunks, all 3 at once when nothing caps them
    monkeypatch.setenv("CONCURRENCY", "10")
    monkeypatch.setenv("OFFLINE_LATENCY_MS", "200")
    free = pipeline.go_live(limit=15, run_id="untagged", return_state=True)
    assert free.is_completed(), free.message
    runs = _chunk_runs(free)
    assert all("llm-generation" not in r.tags for r in runs)  # no limit: no slot to ask the server for
    assert _overlap(runs)
    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag="llm-generation", concurrency_limit=1)
        try:
            capped = pipeline.go_live(limit=15, run_id="capped", return_state=True)
        finally:
            client.delete_concurrency_limit_by_tag("llm-generation")
    assert capped.is_completed(), capped.message
    runs = _chunk_runs(capped)
    assert all("llm-generation" in r.tags for r in runs)
    assert not _overlap(runs), [(r.start_time, r.end_time) for r in runs]


def test_a_stage_task_retries_transient_store_io_and_nothing_else(prefect_server) -> None:
    """In a flow run each stage is a task run whose store I/O is retried (1 s, then 2 s, ...); bad input fails
    the task at once."""
    from prefect import flow

    from content_pipeline.errors import BadInputError, StoreIOError
    from tasks.reporter import PrefectReporter

    calls: list[str] = []

    def flaky() -> str:
        calls.append("flaky")
        if len(calls) < 2:
            raise StoreIOError("S3 put ledger/x failed: SlowDown")
        return "done"

    def bad() -> str:
        calls.append("bad")
        raise BadInputError("catalogue /nowhere: file not found")

    @flow(name="stage-retries")
    def stages(body_name: str) -> str:
        return PrefectReporter("retries").stage("consolidate", {"flaky": flaky, "bad": bad}[body_name])

    assert stages("flaky") == "done" and calls == ["flaky", "flaky"]
    calls.clear()
    state = stages("bad", return_state=True)
    assert state.is_failed() and calls == ["bad"]


def test_a_batch_mode_go_live_flow_and_the_collect_flow_settle_every_item(env, monkeypatch) -> None:
    from tests.support.helpers import fake_llm

    with fake_llm("sk-flow") as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-flow")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        state = pipeline.go_live(run_id="flow-batch", mode="batch", return_state=True)
        assert state.is_completed(), state.message
        assert "30 request(s) planned in 1 batch(es)" in env.get(layout.run_key("flow-batch", "report.md")).decode()
        collected = pipeline.collect_flow(return_state=True)
        assert collected.is_completed(), collected.message
        assert collected.message.startswith("1 batch(es) settled: 30 success(es), 0 reject(s)")
        assert server.stats()["batches_created"] == 1
    assert len(read_checkpoint(env)["done"]) == 30
