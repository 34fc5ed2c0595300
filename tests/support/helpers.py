"""Run go-live the way the CLI runs it without a Prefect server, the project's fake provider on loopback, and
what tests of lost and rescued answers check; the records, ledgers, leases and operator shells that tests of
several modules build."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.ledger.inflight import Booked, booked_at_crash
from content_pipeline.ledger.records import Call, OutcomeRecord
from content_pipeline.ledger.scan import read_records
from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig
from content_pipeline.run.commands import run_command
from content_pipeline.run.golive import go_live
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import PlainReporter
from content_pipeline.settings import Settings
from content_pipeline.store import ReadOnlyStore, Store, store_for
from content_pipeline.store.cell import Cell
from content_pipeline.views.passes import derive
from tests.support.cli_helpers import ROOT
from tests.support.fault_proxy import FaultProxy


def run(settings: Settings, store: Store | None = None) -> RunReport:
    """The core's go-live on `store` (the one the settings name when None), server-free; its report."""
    return go_live(settings, store or store_for(settings), PlainReporter())


@contextmanager
def fake_llm(key: str = "sk-k", *faults: str, **config: Any) -> Iterator[FakeLLM]:
    """The project's fake provider on loopback, recording every request, with `faults` from the start."""
    with FakeLLM(FakeLLMConfig(key=key, record=True, seed=7, **config)) as server:
        server.set_faults(list(faults))
        yield server


def rescued(folder: Path) -> list[OutcomeRecord]:
    """The outcomes waiting in the rescue files of `folder` (what the store would not take)."""
    return [
        OutcomeRecord.model_validate_json(line)
        for path in folder.glob("*.rescue.jsonl")
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


def assert_each_item_paid_once(store: Store, items: int, paid: int) -> None:
    """Every item's outcome is in the ledger once, and every call the provider was paid for is in one."""
    records = read_records(store)
    slugs = [r.slug for r in records]
    assert sorted(set(slugs)) == [f"item-{n:04d}" for n in range(1, items + 1)]
    assert len(slugs) == len(set(slugs))  # none paid twice
    assert sum(len(r.calls) for r in records) == paid


class _Body:
    """The body of a botocore response a hook answers itself."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body

    def read(self, *_: Any) -> bytes:
        return self.body


def s3_error(url: str, status: int, code: str) -> Any:
    """An S3 error answer for a botocore `before-send` hook to return instead of sending the request."""
    from botocore.awsrequest import AWSResponse

    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
    return AWSResponse(url, status, {}, _Body(body))


def books(store: Store) -> tuple[int, Booked]:
    """What the store's books say was spent, as the ledger stands (the views may be stale after a kill): the
    outcomes' cost plus the calls in flight at a crash, booked at their worst case; and those calls."""
    usage = derive(ReadOnlyStore(store)).usage
    booked = booked_at_crash(store, usage)
    return int(usage["cost_nano"]) + booked.nano, booked


def invoice(server: FakeLLM, wait_s: float = 10.0) -> int:
    """What the fake provider has billed, in nano-dollars, once the answers still on their way are done."""
    deadline = time.monotonic() + wait_s
    while server.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # an answer leaves the in-flight count just before it is billed
    return int(server.stats()["billed_nano"])


def generated_store(base: Path, rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    """A local store holding the consolidated successes of `rows` (a go-live on the offline model), and the
    catalogue they came from: what publishing tests start from."""
    from content_pipeline.settings import load_settings

    catalogue = base / "catalogue.jsonl"
    catalogue.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = run(load_settings(store_url=str(base / "store"), catalogue=str(catalogue)).with_run_id())
    assert report.ok and report.stats.successes == len(rows), report.failure
    return base / "store", catalogue


def copy_store(source: tuple[Path, Path], into: Path) -> tuple[Path, Path]:
    """A test's own copy of a generated store and its catalogue."""
    import shutil

    shutil.copytree(source[0], into / "store")
    shutil.copy(source[1], into / "catalogue.jsonl")
    return into / "store", into / "catalogue.jsonl"


@contextmanager
def server_quiet(stack: Any) -> Iterator[None]:
    """Fail the calling test when the stack's Prefect server logs an ERROR or CRITICAL line meanwhile (a
    scheduler failing every minute still answers every API call: its log is where it shows)."""
    _, start = stack.server_errors()
    yield
    errors, _ = stack.server_errors(start)
    assert errors == [], f"the Prefect server logged {len(errors)} error(s) during this test; first: {errors[0]}"


def scheduled_runs_finish(deployment_name: str, count: int = 2, every_s: float = 60, bound_s: float = 300) -> list[Any]:
    """Give the deployment an interval schedule of `every_s` and wait, at most `bound_s`, until the server's
    scheduler has made `count` runs of it (due from now on) that ended; the schedule is removed after.
    Returns those finished runs (fewer when the bound passed)."""
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
    )
    from prefect.client.schemas.schedules import IntervalSchedule

    since = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deployment_name)
        schedule = IntervalSchedule(interval=timedelta(seconds=every_s), anchor_date=since)
        (added,) = client.create_deployment_schedules(deployment.id, [(schedule, True)])
        mine = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        due = FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since))
        done: list[Any] = []
        try:
            deadline = time.monotonic() + bound_s
            while len(done) < count and time.monotonic() < deadline:
                time.sleep(2)
                runs = client.read_flow_runs(deployment_filter=mine, flow_run_filter=due)
                done = [r for r in runs if r.auto_scheduled and r.state is not None and r.state.is_final()]
        finally:
            client.delete_deployment_schedule(deployment.id, added.id)
    return done


def record(
    slug: str, status: str = "success", run: str = "run-1", at: str = "2026-11-23T00:00:01", **extra
) -> OutcomeRecord:
    fields = {
        "id": hashlib.sha256(f"{run}/{slug}/{extra.pop('attempt', 1)}".encode()).hexdigest()[:32],
        "run_id": run,
        "slug": slug,
        "status": status,
        "content": {"headline": f"{slug} headline"} if status == "success" else None,
        "error": None if status == "success" else "length: description has 12 characters",
        "reason": None if status == "success" else "length",
        "model": "gpt-4o-mini",
        "prompt_template": "catalogue-item",
        "prompt_version": "1",
        "input_hash": "h",
        "tokens_in": 100,
        "tokens_out": 50,
        "cost_usd": 0.0001,
        "attempt": 1,
        "run_budget_usd": 1.0,
        "started_at": at,
        "finished_at": at,
    }
    fields.update(extra)
    return OutcomeRecord(**fields)


def write_ledger(store: Store, records: list[OutcomeRecord], segment: str = "seg.jsonl", tail: bytes = b"") -> str:
    key = f"ledger/{records[0].run_id if records else 'run-1'}/{segment}"
    store.put(key, b"".join(r.line() for r in records) + tail)
    return key


def segment_holding(store: Store, slug: str) -> tuple[str, bytes, int]:
    """The ledger object holding `slug`'s record, its bytes, and where the record's line starts."""
    needle = f'"slug":"{slug}"'.encode()
    for info in store.list("ledger/"):
        data = store.get(info.key) or b""
        if needle in data:
            return info.key, data, data.rfind(b"\n", 0, data.index(needle)) + 1
    raise AssertionError(f"no ledger record of {slug}")


def line_number(data: bytes, start: int) -> int:
    return data.count(b"\n", 0, start) + 1


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # daily: this period from 11-19 12:00, the prior from 11-18 12:00


def outcome(slug: str, at: str, status: str = "success", reason: str | None = None, **extra):
    """An outcome finished at `at` (ledger format), with one call per model it names."""
    models = extra.pop("models", ["gpt-4o-mini"])
    cost = extra.pop("cost", 0.001)
    calls = [Call(model=m, tokens_in=100, tokens_out=50, cost_usd=cost / len(models), outcome="x") for m in models]
    fields = {"reason": reason, "error": f"{reason}: detail"} if reason else {}
    tokens = {"tokens_in": 100 * len(models), "tokens_out": 50 * len(models)}
    return record(slug, status, at=f"{at}.000+00:00", calls=calls, cost_usd=cost, **tokens, **fields, **extra)


LEDGER = [
    # this period: a, b (a reject, then a success on escalation), c (refused), d (on the boundary)
    outcome("a", "2026-11-20T01:00:00", cost=0.002),
    outcome("b", "2026-11-19T13:00:00", "reject", "length", attempt=1),
    outcome(
        "b",
        "2026-11-19T14:00:00",
        attempt=2,
        escalated=True,
        models=["gpt-4o-mini", "gpt-4o"],
        cost=0.012,
        model="gpt-4o",
    ),
    outcome("c", "2026-11-19T20:00:00", "reject", "refusal"),
    outcome("d", "2026-11-19T12:00:00"),
    # the prior period: e (just before the boundary), f (a reject), g
    outcome("e", "2026-11-19T11:59:59"),
    outcome("f", "2026-11-18T13:00:00", "reject", "length"),
    outcome("g", "2026-11-18T20:00:00"),
    # neither: before the prior period, and at the end (not in it)
    outcome("h", "2026-11-18T11:00:00"),
    outcome("i", "2026-11-20T12:00:00"),
]


def dead_pid() -> int:
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


def hold(store: Store, key: str, host: str, pid: int, run_id: str, expires_in_s: float) -> str:
    """A lease as a holder wrote it (the next version of its cell); its expiry as a sweep names it."""
    expires = time.time() + expires_in_s
    body = {"host": host, "pid": pid, "run_id": run_id, "token": "t", "expires_ts": expires, "expires_at": "x"}
    cell = Cell(store, key)
    assert cell.swap(json.dumps(body).encode(), cell.read()[1])
    return datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")


def until(ready: object, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.02)


def other_backend_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A second store of the other kind: an S3 prefix for a folder store, a folder for an S3 one."""
    return request.getfixturevalue("s3_url") + "-backup" if backend == "file" else str(tmp_path / "backup")


def batch_settings(make_settings: Any, server: Any, **extra: Any) -> Settings:
    return make_settings(openai_api_key="sk-b", openai_base_url=server.url, generation_mode="batch", **extra)


def collect(settings: Settings, store: Store) -> str:
    outcome = run_command("collect", settings, store, PlainReporter())
    assert outcome.ok, outcome.message
    return outcome.message


LIVE = {"ALLOW_AUTONOMOUS_PUBLISH": " TRUE ", "PUBLISH_APPROVAL_GRANTED": "Yes", "GOVERNANCE_APPROVED": "1"}
POSTS = "/wp-json/wp/v2/posts"


def operator_shell(generated: tuple[Path, Path], tmp_path: Path, wp: Any, url: str) -> dict[str, str]:
    """The environment of an operator's shell: no Prefect API, this test's own store, WordPress at `url` (the
    site, or a proxy in front of it) as editor1, and every governance signal truthy."""
    store, catalogue = copy_store(generated, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(ROOT), STORE_URL=str(store))
    env.update(CATALOGUE=str(catalogue), WP_URL=url, WP_USER="editor1", WP_APP_PASSWORD=wp.users["editor1"])
    env.update(WP_STATUS="publish", **LIVE)
    return env


def cli(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cli.main", *args]
    return subprocess.run(command, env={**env, **extra}, capture_output=True, text=True, timeout=120)


def publish_killed_after_the_first_create(shell: dict[str, str], proxy: FaultProxy) -> None:
    """`publish`, SIGKILLed the moment WordPress has answered its first create (through the proxy)."""
    running: list[subprocess.Popen[str]] = []
    proxy.add(method="POST", path=POSTS, kind="call-after", callback=lambda: running[0].kill())
    command = [sys.executable, "-m", "cli.main", "publish"]
    running.append(subprocess.Popen(command, env=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    running[0].communicate(timeout=120)
    assert running[0].returncode == -9


def run_logs(state) -> list[tuple[int, str]]:
    """The level and message of every line in the flow run's log on the server (its task runs' included)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from cli.temporary_server import drain_to_api

    drain_to_api()
    flow_run_id = state.state_details.flow_run_id
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [(log.level, log.message) for log in logs]
