"""The team's shape for real (devstack/cluster.py): a Prefect server on PostgreSQL, SeaweedFS as the S3 store,
and two process workers on one pool, each on a host of its own (a network namespace with its own hostname,
tests/support/hosts.py); two deployments at once, and a host killed mid-run: Prefect marks its run Crashed when its
heartbeats stop, announces it, and the next run of the deployment takes its claims over on the other host once its
run lease expires (another host's holder is judged by its expiry, never by a pid), with nobody acting."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.ports import free_ports
from content_pipeline.claims.queue import read_queue
from content_pipeline.ledger.scan import scan_ledger
from content_pipeline.ledger.writer import writer_process
from content_pipeline.store import Store, layout, open_store
from content_pipeline.views.audit import audit
from devstack.cluster import Cluster
from tests.support import hosts
from tests.support.helpers import scheduled_runs_finish, server_quiet
from tests.support.notifications import NotificationReceiver

pytestmark = [
    pytest.mark.server,
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.skipif(hosts.missing() is not None, reason=f"no test hosts here: {hosts.missing()}"),
]

WORKER_ENV = {  # the product's defaults otherwise (LEASE_TTL_S, CLAIM_TTL_S, the stack's heartbeat every 30 s)
    "CONCURRENCY": "16",
    "PREFECT_WORKER_QUERY_SECONDS": "1",  # how often a worker asks for work: Prefect's, not a recovery setting
}
RUN_S = 240.0  # bound on any one wait for runs to finish


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, list[hosts.Host], NotificationReceiver]]:
    """The cluster with its server and store on the bridge address, a worker on each of two hosts, and the
    receiver of its failure notifications."""
    receiver = NotificationReceiver()
    with hosts.network(["host-a", "host-b"]) as net:
        state = Path(tempfile.mkdtemp(prefix="cluster-", dir="/tmp"))
        state.chmod(0o755)  # PostgreSQL's account (not root) must reach its data folder inside
        cluster = Cluster(state / "stack", host=net.bridge_ip, port=free_ports(1, net.bridge_ip)[0])
        try:
            cluster.start_postgres()
            cluster.start_seaweed()
            with server_quiet(cluster.stack):
                cluster.start_server()
                cluster.stack.configure({"webhook": receiver.url, "slack": ""}, rate_per_s=500, concurrency=256)
            for host in net.hosts:  # one flow run at a time each: two runs at once land on both hosts
                cluster.start_worker(host.hostname, WORKER_ENV, prefix=host.wrap([]), limit=1)
            with temporary_settings({PREFECT_API_URL: cluster.stack.api_url}):
                yield cluster, net.hosts, receiver
        finally:
            cluster.down()
            shutil.rmtree(state, ignore_errors=True)
            receiver.httpd.shutdown()


@pytest.fixture(autouse=True)
def quiet(cluster) -> Iterator[None]:
    """Every test here fails when the server (on PostgreSQL) logs an error while it runs."""
    with server_quiet(cluster[0].stack):
        yield


def test_a_one_minute_schedule_runs_twice_on_its_own_on_postgresql(cluster) -> None:
    """The server's scheduler on PostgreSQL makes the runs; a worker on one of the hosts runs them."""
    done = scheduled_runs_finish("sweep/release-stale-every-15-minutes", count=2, every_s=60, bound_s=300)
    assert len(done) >= 2, f"{len(done)} scheduled run(s) finished within 300 s"
    assert all(r.state.is_completed() for r in done), [(r.name, r.state.message) for r in done]
    made = cluster[0].query("SELECT count(*) FROM flow_run WHERE auto_scheduled AND state_type = 'COMPLETED'")
    assert int(made.strip()) >= 2  # rows of PostgreSQL's own table, not what an API says it holds


def shared_store(cluster: Cluster) -> Store:
    return open_store(
        cluster.store_url, endpoint_url=cluster.s3_url, region="us-east-1", access_key="t", secret_key="t"
    )


def wait_final(ids: list[Any], timeout_s: float = RUN_S) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + timeout_s
        while True:
            runs = [client.read_flow_run(i) for i in ids]
            if all(r.state.is_final() for r in runs) or time.monotonic() > deadline:
                return runs
            time.sleep(1)


def ran_on(store: Store, run_id: str) -> set[str]:
    """The hosts the run's ledger segments were written from: ledger/<run>/<writer>.signed..., a writer
    being named `<host>-<pid>-<random>`."""
    scan = scan_ledger(store)
    if scan.frame is None or scan.frame.height == 0:
        return set()
    keys = {scan.segments[seg][0] for seg in scan.frame.filter(scan.frame["run_id"] == run_id)["seg"].to_list()}
    writers = {key.split("/")[2].split(layout.SIGNED)[0] for key in keys}  # on S3: <writer>.signed/<part>
    return {str((writer_process(writer) or ("?", 0))[0]) for writer in writers}


def decided(store: Store, run_id: str | None = None) -> list[str]:
    """The slugs with an outcome in the ledger (of one run, or of all)."""
    frame = scan_ledger(store).frame
    if frame is None or frame.height == 0:
        return []
    if run_id is not None:
        frame = frame.filter(frame["run_id"] == run_id)
    return frame["slug"].to_list()


def test_two_deployments_run_at_once_on_two_hosts_on_s3_with_the_server_on_postgresql(cluster) -> None:
    cluster = cluster[0]
    slow = {"env": {"OFFLINE_LATENCY_MS": "1500"}}  # both runs still generate when the second one starts
    run_ids = {"go-live/production": "cluster-production", "go-live/promo": "cluster-promo"}
    started = [run_deployment(n, parameters={"run_id": r}, job_variables=slow, timeout=0) for n, r in run_ids.items()]
    runs = wait_final([r.id for r in started])
    assert all(r.state.is_completed() for r in runs), [(r.name, r.state) for r in runs]
    first, second = sorted(runs, key=lambda r: r.start_time)
    assert second.start_time < first.end_time, "the two runs did not overlap"
    store = shared_store(cluster)
    assert [ran_on(store, r) for r in run_ids.values()] in ([{"host-a"}, {"host-b"}], [{"host-b"}, {"host-a"}])
    generated = {r: decided(store, r) for r in run_ids.values()}
    assert all(len(slugs) >= 1 for slugs in generated.values()), {r: len(s) for r, s in generated.items()}
    everything = decided(store)
    assert len(everything) == len(set(everything)), "an item was generated (and paid for) twice"
    assert audit(store).ok, audit(store).violations
    # the server's database is PostgreSQL: the runs the API reported are rows of its flow_run table
    ids = ", ".join(f"'{r.id}'" for r in runs)
    rows = cluster.query(f"SELECT state_type FROM flow_run WHERE id IN ({ids})")
    assert rows.split() == ["COMPLETED", "COMPLETED"], rows
    with urllib.request.urlopen(f"{cluster.stack.api_url}/admin/settings", timeout=10) as resp:
        database = json.load(resp)["server"]["database"]
    assert database["connection_url"], database  # set (Prefect shows it obfuscated, never in clear)
    server_pid = cluster.stack._read_pids()["server"][0]
    environ = Path(f"/proc/{server_pid}/environ").read_bytes().split(b"\0")
    assert any(e.startswith(b"PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://") for e in environ)


def wait_for_claims_and_an_outcome(store: Store, run_id: str, timeout_s: float = 180) -> dict[str, Any]:
    """The run's entry in the claims queue, once the ledger holds at least one outcome of it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entry = read_queue(store)[0].get("runs", {}).get(run_id)
        if entry and decided(store, run_id):
            return entry
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} claimed and generated nothing within {timeout_s:.0f}s")


def run_logs(flow_run_id: Any) -> str:
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def flow_run_state(cluster: Cluster, flow_run_id: Any) -> str:
    """The run's state as PostgreSQL's own flow_run table holds it."""
    return cluster.query(f"SELECT state_type FROM flow_run WHERE id = '{flow_run_id}'").strip()


def freed(logs: str) -> bool:
    """Whether a run's logs say it freed the dead run's claims (its batch, or its sweep, did)."""
    return "freed the claims of run cluster-killed" in logs or "claim(s) of run cluster-killed" in logs


def test_a_dead_host_costs_minutes_and_nobody_acts(cluster) -> None:
    """A host killed mid-run with the product's defaults (LEASE_TTL_S, CLAIM_TTL_S; heartbeats every 30 s,
    the crash automation after four missed): within 3 minutes the dead run is Crashed in PostgreSQL, the
    failure notification is delivered, and the next run of the same production deployment, which waited for
    the deployment's one slot, starts on the other host, frees the dead run's claims and generates the rest."""
    cluster, machines, receiver = cluster
    store = shared_store(cluster)
    # 60 items, 15 rounds of 3 s; the env replaces the pool's, so the shared LLM limits are named again
    slow = {"env": {"OFFLINE_LATENCY_MS": "3000", "CONCURRENCY": "4", "LLM_GLOBAL_LIMITS": "true"}}
    victim_run = run_deployment(
        "go-live/production", parameters={"run_id": "cluster-killed", "limit": 60}, job_variables=slow, timeout=0
    )
    entry = wait_for_claims_and_an_outcome(store, "cluster-killed")
    next_run = run_deployment(  # waits for the deployment's one slot (collision strategy ENQUEUE)
        "go-live/production", parameters={"run_id": "cluster-next", "limit": 1000}, timeout=0
    )
    with get_client(sync_client=True) as client:  # the victim holds slots of the shared in-flight limit
        assert client.read_global_concurrency_limit_by_name("llm-concurrency").active_slots >= 1
    [victim] = [h for h in machines if h.hostname == entry["host"]]
    [survivor] = [h for h in machines if h is not victim]
    assert victim.kill(), "nothing ran on the victim's host"
    killed_at = time.monotonic()
    unfinished = set(entry["slugs"]) - set(decided(store, "cluster-killed"))
    assert unfinished, "the run finished before its host was killed: nothing to take over"

    deadline = killed_at + 180  # nobody acts from here: the automation, the slot and the worker do it all
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline and not (
            flow_run_state(cluster, victim_run.id) == "CRASHED"
            and any(victim_run.name in json.dumps(body) for body in receiver.bodies)
            and client.read_flow_run(next_run.id).state.type in (StateType.RUNNING, StateType.COMPLETED)
        ):
            time.sleep(2)
        crashed, started = flow_run_state(cluster, victim_run.id), client.read_flow_run(next_run.id).state
    assert crashed == "CRASHED", f"the dead run is {crashed} 3 min after its host died"
    notice = receiver.wait_for(victim_run.name, timeout_s=1)
    assert "Crashed" in json.dumps(notice), notice
    assert started.type in (StateType.RUNNING, StateType.COMPLETED), f"the next run is {started.name} after 3 min"

    [finished] = wait_final([next_run.id])
    assert finished.state.is_completed(), finished.state.message
    assert ran_on(store, "cluster-next") == {survivor.hostname}
    by_killed, by_next = set(decided(store, "cluster-killed")), set(decided(store, "cluster-next"))
    deadline = time.monotonic() + 30  # the run's last log lines reach the server shortly after it ends
    while not freed(logs := run_logs(next_run.id)) and time.monotonic() < deadline:
        time.sleep(1)
    assert unfinished - by_killed <= by_next, f"claims of the dead run were not taken over: {logs[-3000:]}"
    everything = decided(store)
    assert len(everything) == len(set(everything)), "an item was generated (and paid for) twice"
    assert "cluster-killed" not in read_queue(store)[0].get("runs", {})
    assert audit(store).ok, audit(store).violations
    assert freed(logs), logs[-3000:]
    with get_client(sync_client=True) as client:  # the dead run's LLM slots were a lease: they expired
        deadline = time.monotonic() + 90
        while (held := client.read_global_concurrency_limit_by_name("llm-concurrency").active_slots) and (
            time.monotonic() < deadline
        ):
            time.sleep(2)
    assert held == 0, f"{held} slot(s) of llm-concurrency still held after every run ended"
