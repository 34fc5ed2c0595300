"""The Prefect deployment end to end: a real server on loopback, `prefect deploy` from prefect.yaml, process
workers, a parameterised run through the API, failure notifications through the automation, schedules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.ports import free_port
from content_pipeline.ledger.scan import scan_ledger
from content_pipeline.settings import MAX_LIMIT
from content_pipeline.store import open_store
from content_pipeline.views.audit import audit
from devstack.stack import Stack
from tests.support.helpers import scheduled_runs_finish, server_quiet
from tests.support.notifications import NotificationReceiver

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, NotificationReceiver, Path]]:
    state = tmp_path_factory.mktemp("stack")
    store_dir = state / "store"
    receiver = NotificationReceiver()
    stack = Stack(state, free_port())
    try:
        with server_quiet(stack):  # starting and configuring it logs no error on the server
            stack.start_server()
            stack.configure({"webhook": receiver.url, "slack": ""}, rate_per_s=500, concurrency=64)
        # each poll of a worker writes to the server's SQLite: two workers polling every second starve its other
        # writers past SQLite's 60 s busy timeout ("database is locked" in the server's log) on 2 cores
        worker_env = {"STORE_URL": str(store_dir), "OFFLINE_LATENCY_MS": "400", "PREFECT_WORKER_QUERY_SECONDS": "5"}
        stack.start_worker("worker-1", worker_env)
        stack.start_worker("worker-2", worker_env)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            yield stack, receiver, store_dir
    finally:
        stack.down()
        receiver.httpd.shutdown()


@pytest.fixture(autouse=True)
def quiet(stack) -> Iterator[None]:
    """Every test here fails when the server logs an error while it runs."""
    with server_quiet(stack[0]):
        yield


EXPECTED_CRONS = {
    "go-live/production": ["0 */4 * * *"],
    "go-live/promo": ["30 */6 * * *"],
    "go-live/ad-hoc": [],
    "audit/invariants-daily": ["0 6 * * *"],
    "collect/settle-batches-every-10-minutes": ["*/10 * * * *"],
    "sweep/release-stale-every-15-minutes": ["*/15 * * * *"],
    "health/checks-hourly": ["0 * * * *"],
    "report/kpi-daily": ["0 7 * * *"],
    "report/cost-daily": ["5 7 * * *"],
    "report/kpi-weekly": ["0 8 * * 1"],
    "report/cost-weekly": ["5 8 * * 1"],
    "backup/nightly": ["30 2 * * *"],
    "template-rank/rank-daily": ["30 8 * * *"],
    "publish/morning": ["0 9 * * *"],
    "engagement-pull/engagement-daily": ["0 6 * * *"],
    "engagement-drops/drops-daily": ["30 6 * * *"],
    "publish-watch/spike-watch-every-15-minutes": ["*/15 * * * *"],
}


def test_schedules_parameters_and_limits_are_the_ones_prefect_yaml_states(stack) -> None:
    with get_client(sync_client=True) as client:
        crons = {}
        for name in EXPECTED_CRONS:
            deployment = client.read_deployment_by_name(name)
            crons[name] = [s.schedule.cron for s in deployment.schedules]
            assert deployment.enforce_parameter_schema, name
            assert deployment.global_concurrency_limit.limit == 1, name
        production = client.read_deployment_by_name("go-live/production")
    assert crons == EXPECTED_CRONS
    assert production.parameters == {"scope": "all", "limit": 200, "budget_usd": 50}
    props = production.parameter_openapi_schema["properties"]
    assert props["limit"]["minimum"] == 1 and props["budget_usd"]["exclusiveMinimum"] == 0
    assert props["scope"]["enum"] == ["all", "promo", "changed"]
    with get_client(sync_client=True) as client:
        publish = client.read_deployment_by_name("publish/morning")
    assert publish.parameters == {"max_posts": 20, "dry_run": False}
    limits = publish.parameter_openapi_schema["properties"]["max_posts"]
    assert (limits["minimum"], limits["maximum"]) == (1, 10000)
    assert props["limit"]["description"] == "Most items this run claims" and props["limit"]["maximum"] == MAX_LIMIT


def test_every_parameter_of_every_deployment_has_a_description_on_the_server(stack) -> None:
    """What the UI's form shows under each field: read back from the server's parameter schemas."""
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments()
    assert len(deployments) >= len(EXPECTED_CRONS)
    undescribed = [
        f"{d.name}: {name}"
        for d in deployments
        for name, prop in d.parameter_openapi_schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []
    assert sum(len(d.parameter_openapi_schema.get("properties", {})) for d in deployments) > 20


def test_a_one_minute_schedule_runs_twice_on_its_own(stack) -> None:
    """The real thing a cron deployment promises: the server's scheduler creates the runs, a worker runs
    them to the end, and nobody starts anything."""
    done = scheduled_runs_finish("sweep/release-stale-every-15-minutes", count=2, every_s=60, bound_s=300)
    assert len(done) >= 2, f"{len(done)} scheduled run(s) finished within 300 s"
    assert all(r.state.is_completed() for r in done), [(r.name, r.state.message) for r in done]
    assert {r.work_pool_name for r in done} == {"content-pipeline"}  # taken and run by the pool's workers


def upcoming_runs() -> dict[str, list[Any]]:
    """Each scheduled deployment's runs still to come, as the UI's "Upcoming" tab lists them."""
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        return {
            d.name: client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                    expected_start_time=FlowRunFilterExpectedStartTime(after_=now),
                ),
            )
            for d in client.read_deployments()
            if d.schedules
        }


def test_every_scheduled_deployment_has_upcoming_runs(stack) -> None:
    """The scheduler made runs ahead of time for each one (a schedule changed a moment ago gets its runs
    again at the scheduler's next pass: the wait is bounded by two of them)."""
    deadline = time.monotonic() + 130
    upcoming = upcoming_runs()
    while {name for name, runs in upcoming.items() if not runs} and time.monotonic() < deadline:
        time.sleep(5)
        upcoming = upcoming_runs()
    assert len(upcoming) == len([n for n, crons in EXPECTED_CRONS.items() if crons])
    assert {name for name, runs in upcoming.items() if not runs} == set()
    assert all(r.auto_scheduled for runs in upcoming.values() for r in runs)


def test_a_parameterised_ad_hoc_run_through_the_api(stack) -> None:
    _, _, store_dir = stack
    run = run_deployment("go-live/ad-hoc", parameters={"limit": 25, "budget_usd": 10, "run_id": "adhoc-1"}, timeout=300)
    assert run.state.is_completed(), run.state.message
    store = open_store(str(store_dir))
    ledger = scan_ledger(store).frame
    mine = ledger.filter(ledger["run_id"] == "adhoc-1")
    assert mine.height == 25 and set(mine["run_budget_usd"]) == {10.0}
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    keys = {a.key for a in artifacts}
    assert {"go-live-report", "go-live-progress"} <= keys
    report = next(a for a in artifacts if a.key == "go-live-report")
    assert "adhoc-1" in report.data and "$10.00 budget" in report.data
    with pytest.raises(Exception, match="limit"):
        run_deployment("go-live/ad-hoc", parameters={"limit": 0}, timeout=0)


def test_a_failed_run_is_announced_through_the_automation(stack) -> None:
    _, receiver, _ = stack
    run = run_deployment("go-live/ad-hoc", parameters={"limit": 40, "budget_usd": 0.05}, timeout=300)
    assert run.state.is_failed()
    body = receiver.wait_for(run.name)
    text = body["text"]
    assert f"/runs/flow-run/{run.id}" in text  # the UI link
    assert "preflight: budget too low for batch size" in text  # the stage and the error
    assert "(spent $0.0000 of $0.0500)" in text  # the spend so far
    assert "go-live" in body["subject"] and "Failed" in body["subject"]
    assert run.state.message.startswith("preflight: budget too low for batch size") and "\n" not in run.state.message
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    engine = [log.message for log in logs if "Traceback" in log.message or "encountered an exception" in log.message]
    assert logs and engine == []  # an expected refusal is its line, not an engine traceback


def test_a_red_health_run_is_announced_through_the_automation(stack, tmp_path) -> None:
    from content_pipeline.claims.queue import claim
    from tests.support.helpers import dead_pid

    _, receiver, _ = stack
    sick = tmp_path / "sick-store"  # a store of its own: the claims of a run whose process is gone
    claim(open_store(str(sick)), "crashed", ["item-0001"], 1, dead_pid(), 3600)
    run = run_deployment("health/checks-hourly", job_variables={"env": {"STORE_URL": str(sick)}}, timeout=300)
    assert run.state.is_failed()
    assert run.state.message.startswith("health red: claims: 1 stale claim(s) of 1 gone run(s)"), run.state.message
    body = receiver.wait_for(run.name)
    assert "health" in body["subject"] and "Failed" in body["subject"]
    assert f"/runs/flow-run/{run.id}" in body["text"] and "1 stale claim(s)" in body["text"]


def test_a_planted_engagement_drop_turns_health_red_and_is_announced(stack, tmp_path) -> None:
    from datetime import timedelta

    from tests.support.engagement import TODAY, figures, publish_on, steady_then

    _, receiver, _ = stack
    fallen = tmp_path / "fallen-store"  # a store of its own: posts whose visitors fell 40% yesterday
    store, posts = open_store(str(fallen)), [f"item-{n:04d}" for n in range(1, 4)]
    publish_on(store, {slug: TODAY - timedelta(days=12) for slug in posts})
    figures(store, "plausible", steady_then(posts, 40.0, TODAY - timedelta(days=1), drop=0.4))
    env = {"env": {"STORE_URL": str(fallen)}}
    health = run_deployment("health/checks-hourly", job_variables=env, timeout=300)
    assert health.state.is_failed() and "engagement: down past 30%: plausible visitors" in health.state.message
    body = receiver.wait_for(health.name)
    assert "health" in body["subject"] and "down past 30%: plausible visitors of all posts" in body["text"]
    drops = run_deployment("engagement-drops/drops-daily", job_variables=env, timeout=300)
    assert drops.state.is_failed() and drops.state.message.startswith("engagement red: down past 30%")
    body = receiver.wait_for(drops.name)
    assert "engagement-drops" in body["subject"] and f"/runs/flow-run/{drops.id}" in body["text"]


def test_a_publishing_failure_spike_halts_publishing_and_is_announced(stack, tmp_path) -> None:
    from content_pipeline.publish.halt import halted
    from content_pipeline.publish.log import AttemptLog

    _, receiver, _ = stack
    failing = open_store(str(tmp_path / "failing-store"))  # 2 of the last hour's 20 live attempts failed
    with AttemptLog(failing, "publish-run") as log:
        for n in range(20):
            result = "failed" if n < 2 else "created"
            log.write(
                "outcome", key=f"k{n}", target="wordpress", slug=f"s-{n}", content_hash="h", live=True, result=result
            )
    env = {"env": {"STORE_URL": str(tmp_path / "failing-store")}}
    run = run_deployment("publish-watch/spike-watch-every-15-minutes", job_variables=env, timeout=300)
    assert run.state.is_failed()
    assert run.state.message.startswith("publish watch: publishing halted: failure spike: 2 of 20"), run.state.message
    body = receiver.wait_for(run.name)
    assert "publish-watch" in body["subject"] and "failure spike: 2 of 20" in body["text"]
    assert (halted(failing) or "").startswith("failure spike: 2 of 20 live publish attempt(s)")
    again = run_deployment("publish-watch/spike-watch-every-15-minutes", job_variables=env, timeout=300)
    assert again.state.is_completed() and "publishing is halted: failure spike" in again.state.message


def test_two_workers_run_two_deployments_at_once_without_double_claims(stack) -> None:
    _, _, store_dir = stack
    # slow calls (3 s each: production's 200 items take 4 rounds of 64, promo's 100 take 2) keep both runs
    # generating long after each flow-run process has started, however slowly the machine starts them
    slow = {"env": {"OFFLINE_LATENCY_MS": "3000"}}
    run_ids = {"go-live/production": "two-workers-production", "go-live/promo": "two-workers-promo"}
    production, promo = (
        run_deployment(name, parameters={"run_id": run_id}, job_variables=slow, timeout=0)
        for name, run_id in run_ids.items()
    )
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            runs = [client.read_flow_run(r.id) for r in (production, promo)]
            if all(r.state.is_final() for r in runs):
                break
            time.sleep(1)
    assert all(r.state.is_completed() for r in runs), [r.state for r in runs]
    first, second = sorted(runs, key=lambda r: r.start_time)
    assert second.start_time < first.end_time, "the two runs did not overlap"
    store = open_store(str(store_dir))
    ledger = scan_ledger(store).frame
    generated = {  # each run's successes, by the run id its deployment run was given
        run_id: ledger.filter((ledger["run_id"] == run_id) & (ledger["status"] == "success"))["slug"].to_list()
        for run_id in run_ids.values()
    }
    assert all(len(slugs) >= 1 for slugs in generated.values()), {r: len(s) for r, s in generated.items()}
    assert ledger["slug"].is_unique().all(), "an item was generated (and paid for) twice, by these runs or others"
    assert audit(store).ok, audit(store).violations


def flow_run_pids(flow_run_id: str) -> list[int]:
    """Processes whose environment names this flow run (the process worker sets PREFECT__FLOW_RUN_ID)."""
    needle = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "environ").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_a_crashed_run_is_announced_too(stack) -> None:
    import os
    import signal

    _, receiver, store_dir = stack
    run = run_deployment(
        "go-live/ad-hoc",
        parameters={"limit": 60, "budget_usd": 30, "run_id": "to-be-killed"},
        job_variables={"env": {"OFFLINE_LATENCY_MS": "3000"}},
        timeout=0,
    )
    ledger_dir = store_dir / "ledger" / "to-be-killed"
    deadline = time.monotonic() + 120
    while not ledger_dir.exists() and time.monotonic() < deadline:  # generation has started
        time.sleep(0.2)
    pids = flow_run_pids(str(run.id))
    assert pids, "the flow run's process was not found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    body = receiver.wait_for(run.name, timeout_s=120)
    assert "Crashed" in body["subject"] and f"/runs/flow-run/{run.id}" in body["text"]
