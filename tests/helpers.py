"""Run go-live the way the CLI runs it without a Prefect server, the project's fake provider on loopback, and
what tests of lost and rescued answers check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from content_pipeline.ledger.inflight import Booked, booked_at_crash
from content_pipeline.ledger.records import OutcomeRecord
from content_pipeline.ledger.scan import read_records
from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig
from content_pipeline.run.golive import go_live
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import PlainReporter
from content_pipeline.settings import Settings
from content_pipeline.store import ReadOnlyStore, Store, store_for
from content_pipeline.views.passes import derive


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
    import json

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
