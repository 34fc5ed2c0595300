"""The `content-pipeline` command as an operator runs it, on both front doors: the core directly (no Prefect
API configured) and the Prefect flow (a server configured); and go-live killed with SIGKILL mid-generation."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from content_pipeline.ledger.records import OutcomeRecord
from content_pipeline.ledger.scan import scan_ledger
from content_pipeline.store import layout, open_store
from content_pipeline.views.audit import audit
from content_pipeline.views.snapshot import read_master
from tests.conftest import make_item, snapshot
from tests.support.cli_helpers import CLI, base_env, run

pytestmark = [pytest.mark.slow]


@pytest.fixture(params=["direct", pytest.param("flow", marks=pytest.mark.server)])
def front_door(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cli_env(front_door: str, request: pytest.FixtureRequest, tmp_path, write_catalogue) -> dict[str, str]:
    env = base_env(tmp_path)
    if front_door == "flow":
        env["PREFECT_API_URL"] = request.getfixturevalue("prefect_server")
    env.update(
        STORE_URL=str(tmp_path / "cli-store"),
        CATALOGUE=write_catalogue([make_item(n) for n in range(1, 201)], "cli-catalogue.jsonl"),
    )
    return env


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
            "error: go-live --limit 0: Input should be greater than or equal to 1",
        ),
        (["go-live", "--run-id", "../x"], {}, 2, "error: go-live --run-id ../x: use 1-64 characters of [A-Za-z0-9._-]"),
        (
            ["go-live"],
            {"CATALOGUE": "/nowhere/cat.jsonl"},
            1,
            "go-live failed: inventory: catalogue /nowhere/cat.jsonl: file not found",
        ),
        (
            ["go-live", "--budget-usd", "0.5"],
            {},
            1,
            "go-live failed: preflight: budget too low for batch size: batch size 195 items",
        ),
        (
            ["go-live", "--budget-usd", "1e30"],
            {},
            2,
            "error: go-live --budget-usd 1e+30: Input should be less than or equal",
        ),
        (["go-live"], {"BUDGET_USD": "inf"}, 2, "error: setting BUDGET_USD: Input should be a finite number"),
        (
            ["go-live"],
            {"CONCURRENCY": "-3"},
            2,
            "error: setting CONCURRENCY: Input should be greater than or equal to 1",
        ),
        (["go-live"], {"CATALOGUE": "EMPTY"}, 1, "go-live failed: inventory: catalogue "),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(cli_env, args, extra, code, line) -> None:
    store = open_store(cli_env["STORE_URL"])
    assert run(cli_env, "go-live", "--limit", "5").returncode == 0
    before = {k: v for k, v in snapshot(store).items() if not k.startswith(("runs/", "state/", "locks/"))}
    if extra.get("CATALOGUE") == "EMPTY":
        empty = Path(cli_env["CATALOGUE"]).with_name("empty.jsonl")
        empty.write_bytes(b"")
        extra, line = {"CATALOGUE": str(empty)}, f"{line}{empty} is empty: no rows"
    result = run(cli_env, *args, **extra)
    assert result.returncode == code
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [x for x in result.stderr.splitlines() if x.startswith(("error:", "go-live failed:"))]
    assert len(errors) == 1 and errors[0].startswith(line), result.stderr[-2000:]
    after = {k: v for k, v in snapshot(store).items() if not k.startswith(("runs/", "state/", "locks/"))}
    assert after == before


@pytest.mark.parametrize(
    ("store", "code", "line"),
    [
        (
            "s3://no-such-bucket-here/p",
            2,
            "error: STORE_URL s3://no-such-bucket-here/p: bucket 'no-such-bucket-here' does not exist",
        ),
        ("UNREACHABLE", 2, "error: STORE_URL s3://pipeline-tests/p: S3 endpoint unreachable"),
        ("A-FILE", 1, "error: cannot create store folder "),
    ],
)
def test_a_bad_store_is_one_line_before_prefect_starts(s3_endpoint, cli_env, tmp_path, store, code, line) -> None:
    """Bucket, endpoint and folder are checked before a Prefect server (configured or temporary) is asked
    for anything: the whole of stderr is the one line, on both front doors."""
    extra = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    extra["STORE_URL"] = store
    if store == "UNREACHABLE":
        extra.update(STORE_URL="s3://pipeline-tests/p", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    if store == "A-FILE":
        (tmp_path / "a-file").write_text("not a folder")
        extra["STORE_URL"] = str(tmp_path / "a-file" / "store")
    result = run(cli_env, "go-live", "--limit", "5", **extra)
    assert result.returncode == code
    assert result.stderr.strip().splitlines()[:1] == [result.stderr.strip()], result.stderr[-2000:]
    assert result.stderr.startswith(line), result.stderr[-2000:]


@pytest.mark.server
def test_every_command_reads_the_store_the_flows_use(prefect_server, tmp_path, write_catalogue) -> None:
    """With a Prefect API configured, the STORE_BLOCK block (when it exists) names the store of status,
    view, health and the rest, as it does in a flow run, not STORE_URL."""
    import uuid

    from blocks import StoreLocation

    name = f"cli-store-{uuid.uuid4().hex[:8]}"  # a block of this test's own on the session's server
    block_store = tmp_path / "block-store"
    StoreLocation(url=str(block_store)).save(name)
    env = {**base_env(tmp_path), "PREFECT_API_URL": prefect_server, "STORE_BLOCK": name}
    env.update(STORE_URL=str(tmp_path / "env-store"), CATALOGUE=write_catalogue([make_item(n) for n in range(1, 11)]))
    try:
        assert run(env, "go-live", "--direct").returncode == 0
        status = json.loads(run(env, "status", "--json").stdout)
        assert status["store"] == str(block_store) and status["done"] == 10
        assert len(run(env, "view", "processed").stdout.split()) == 10
        health = json.loads(run(env, "health", "--json").stdout)
        assert health["checks"][0]["detail"] == f"{block_store} reachable and writable"
        assert not (tmp_path / "env-store").exists()
    finally:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.delete_block_document(StoreLocation.load(name)._block_document_id)


def _comparable(report: str) -> str:
    """A report without what differs between two runs of the same work: the store's path and the duration."""
    report = re.sub(r"- duration: [0-9.]+ s", "- duration: N s", report)
    return re.sub(r"`[^`]*cli-store-(direct|flow)", "`STORE", report)


@pytest.mark.server
def test_both_front_doors_give_the_same_report_files_and_exit_codes(prefect_server, tmp_path, write_catalogue):
    env = base_env(tmp_path)
    env["CATALOGUE"] = write_catalogue([make_item(n) for n in range(1, 41)], "same.jsonl")
    doors = {"direct": {}, "flow": {"PREFECT_API_URL": prefect_server}}
    results = {}
    for door, extra in doors.items():
        door_env = {**env, **extra, "STORE_URL": str(tmp_path / f"cli-store-{door}")}
        ok = run(door_env, "go-live", "--run-id", "same-run", "--limit", "30")
        refused = run({**door_env, "MIN_ITEM_COST_USD": "0.25"}, "go-live", "--run-id", "poor-run", "--budget-usd", "1")
        results[door] = (ok, refused, open_store(door_env["STORE_URL"]))
    (d_ok, d_refused, d_store), (f_ok, f_refused, f_store) = results["direct"], results["flow"]
    assert d_ok.returncode == f_ok.returncode == 0 and d_refused.returncode == f_refused.returncode == 1
    assert d_ok.stdout.splitlines()[-1] == f_ok.stdout.splitlines()[-1] == "go-live: all invariants hold"
    failed = [x for x in d_refused.stderr.splitlines() if x.startswith("go-live failed:")]
    assert failed == [x for x in f_refused.stderr.splitlines() if x.startswith("go-live failed:")]
    assert failed == [
        "go-live failed: preflight: budget too low for batch size: batch size 10 items, budget $1.00, "
        "minimum needed $2.50 (at $0.2500/item) (spent $0.0000 of $1.00)"
    ]
    for run_id in ("same-run", "poor-run"):
        names = {i.key for i in d_store.list(layout.run_dir(run_id))}
        assert names == {i.key for i in f_store.list(layout.run_dir(run_id))}
        for key in names:
            if key.endswith(layout.REPORT):
                assert _comparable(d_store.get(key).decode()) == _comparable(f_store.get(key).decode())
            else:
                assert d_store.get(key) == f_store.get(key), key
    assert _comparable(d_ok.stdout) == _comparable(f_ok.stdout)  # the report the operator sees
    assert "Starting temporary server" not in d_ok.stderr + d_refused.stderr


def ledger_lines(store) -> int:
    return sum((store.get(i.key) or b"").count(b"\n") for i in store.list("ledger/") if i.key.endswith(".jsonl"))


def descendants(pid: int) -> set[int]:
    """Every living process below `pid`, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        kids = {child for child, ppid in parents.items() if ppid == parent}
        found |= kids
        todo.extend(kids)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_mid_generation_loses_nothing_and_pays_nothing_twice(cli_env, store_url, front_door) -> None:
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
    left = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = scan_ledger(store).frame
    assert 40 <= before.height < 200, "the kill must land in the middle of generation"
    assert left == set() or front_door == "flow", f"the direct CLI run had child processes: {left}"
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


def test_a_sigkilled_prefect_run_on_its_temporary_server_leaves_no_process_behind(tmp_path, write_catalogue):
    """`--prefect` with no server configured starts a Prefect server of the run's own: killed with the run."""
    env = base_env(tmp_path)
    env.update(
        STORE_URL=str(tmp_path / "store"),
        CATALOGUE=write_catalogue([make_item(n) for n in range(1, 201)], "kill.jsonl"),
        OFFLINE_LATENCY_MS="150",
        CONCURRENCY="4",
    )
    store = open_store(env["STORE_URL"])
    proc = subprocess.Popen(
        [*CLI, "go-live", "--prefect"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while ledger_lines(store) < 10 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
    server = descendants(proc.pid)
    assert server, "the --prefect run has its temporary server below it"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in server if alive(pid)], "the temporary Prefect server outlived the killed run"
