"""Consolidate, sync and audit: views derived from the ledger, idempotent, and every invariant checked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import polars as pl
import pytest

from content_pipeline.ledger import spill
from content_pipeline.ledger.spend import spent_since
from content_pipeline.ledger.spill import Partitions
from content_pipeline.store import Store, layout
from content_pipeline.store.host import this_host
from content_pipeline.store.lease import held_leases
from content_pipeline.views import passes as passes_module
from content_pipeline.views import periodic as periodic_module
from content_pipeline.views.audit import audit
from content_pipeline.views.consolidate import Consolidation, consolidate, sync_checkpoint
from content_pipeline.views.master import once_per_id
from content_pipeline.views.passes import KEPT_PASS
from content_pipeline.views.snapshot import (
    manifest_cell,
    read_checkpoint,
    read_manifest,
    read_master,
    read_usage,
    read_view,
    read_views,
    views_current,
)
from content_pipeline.views.swap import swap_views
from tests.conftest import snapshot
from tests.support.helpers import record, write_ledger


class LedgerPasses:
    """The passes over the ledger (each a `Partitions`) that a test's consolidations and audits made."""

    def __init__(self, partitioned: bool) -> None:
        self.partitioned = partitioned
        self.made: list[Partitions] = []

    def check(self) -> None:
        """The ledger was worked the way the test asked: whole, in memory; or spilled to partitions on disk."""
        seen = [(p.count, p.spilled_bytes) for p in self.made]
        assert seen, "no pass over the ledger was made"
        if self.partitioned:
            assert all(count > 1 and spilled > 0 for count, spilled in seen), seen
        else:
            assert all(count == 1 and spilled == 0 for count, spilled in seen), seen


@pytest.fixture(params=["whole", "partitioned"])
def ledger_passes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[LedgerPasses]:
    """The test runs twice: with the ledger worked whole, and with every ledger of more than 600 bytes (a
    record line is about 700) spread by slug over partitions spilled to local files, as a big ledger is;
    the views and the audit must not tell the two apart. The test calls `check()` to prove which it was."""
    passes = LedgerPasses(request.param == "partitioned")

    class Recorded(Partitions):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            passes.made.append(self)

    monkeypatch.setattr(passes_module, "Partitions", Recorded)
    if passes.partitioned:
        monkeypatch.setattr(spill, "PART_BYTES", 600)
    KEPT_PASS.clear()  # no spilled pass of an earlier test is worked again
    yield passes
    KEPT_PASS.clear()


def test_latest_success_wins_and_a_reject_never_shadows_a_success(store: Store) -> None:
    write_ledger(
        store,
        [
            record("a", at="2026-11-23T00:00:01"),
            record("a", run="run-2", at="2026-11-23T00:00:05"),  # later passing version replaces
            record("b", status="reject", at="2026-11-23T00:00:09"),
            record("b", run="run-2", at="2026-11-23T00:00:02"),  # an earlier success beats a later reject
            record("c", status="reject"),
        ],
    )
    consolidate(store)
    succ = read_master(store, "successes")
    assert dict(zip(succ["slug"], succ["run_id"], strict=True)) == {"a": "run-2", "b": "run-2"}
    assert read_master(store, "rejects")["slug"].to_list() == ["c"]
    ck = read_checkpoint(store)
    assert set(ck["done"]) == {"a", "b"} and set(ck["rejected"]) == {"c"}
    assert audit(store).ok


def without_leases(objects: dict[str, bytes]) -> dict[str, bytes]:
    """The store's objects but the lease cells' (taking and releasing the views lease each add a version)."""
    return {key: data for key, data in objects.items() if not key.startswith(layout.LOCKS_PREFIX)}


def test_consolidating_twice_changes_nothing(store: Store) -> None:
    write_ledger(store, [record(f"s{n}") for n in range(5)] + [record("r", status="reject")])
    first = consolidate(store)
    assert first.changed == ["successes", "rejects", "processed", "rejected", "usage", "checkpoint", "superseded"]
    before = without_leases(snapshot(store))
    second = consolidate(store)
    assert second.changed == []
    assert without_leases(snapshot(store)) == before and held_leases(store) == {}
    assert len(store.read_appended(layout.TELEMETRY).decode().splitlines()) == 1


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_torn_final_line_is_repaired_and_reported_and_no_record_is_dropped(store: Store) -> None:
    whole = [record("a"), record("b")]
    torn = record("c").line()[:40]
    key = write_ledger(store, whole, segment=f"{this_host()}-{dead_pid()}-abcd.jsonl", tail=torn)
    result = consolidate(store)
    assert len(result.repaired) == 1 and "torn final line of 40 bytes" in result.repaired[0]
    assert store.get(key) == b"".join(r.line() for r in whole)
    quarantined = [i.key for i in store.list(layout.QUARANTINE_PREFIX)]
    assert len(quarantined) == 1 and store.get(quarantined[0]) == torn
    assert read_master(store, "successes")["slug"].to_list() == ["a", "b"]
    assert audit(store).ok
    telemetry = json.loads(store.read_appended(layout.TELEMETRY).decode().splitlines()[-1])
    assert telemetry["repaired"] == result.repaired


def test_torn_tail_of_a_live_writer_is_left_alone(store: Store) -> None:
    key = write_ledger(store, [record("a")], segment=f"{this_host()}-{1}-live.jsonl", tail=b'{"id": "x"')
    result = consolidate(store)
    assert result.repaired == [] and len(result.torn_tails) == 1
    assert store.get(key).endswith(b'{"id": "x"')


def tamper(store: Store, name: str, change) -> None:
    """Publish a damaged view the way a hand edit or a bug would: the audit must name what is wrong."""
    lines = [json.loads(x) for x in read_view(store, name).decode().splitlines()]
    swap_views(store, {name: "".join(json.dumps(x) + "\n" for x in change(lines)).encode()})


VIOLATIONS = [  # (a hand edit or bug, the violation the audit names)
    ("error-in-success", "invariant 1: 1 master success(es) carry an error: a"),
    ("dupe-in-master", "invariant 2: slug(s) more than once in master successes: a"),
    ("in-both", "invariant 2: slug(s) in both master successes and rejects: r"),
    ("lost", "invariant 3: 1 ledger success(es) missing from master (run consolidate): b"),
    ("not-in-ledger", "invariant 3: master successes hold record(s) absent from the ledger: zz"),
    ("checkpoint-drift", "invariant 4: checkpoint 'done' differs from master successes: a"),
    ("queued-and-done", "invariant 4: slug(s) both queued and decided in the checkpoint: a"),
    ("checkpoint-drift-in-place", "invariant 4: checkpoint 'done' differs from master successes: a"),
    ("queued-and-done-in-place", "invariant 4: slug(s) both queued and decided in the checkpoint: a"),
    ("spend-drift", "invariant 5: recorded spend 1.000000 USD != ledger sum 0.000400 USD"),
    ("bad-line", "invariant 6: ledger/run-1/other.jsonl: line 1 does not parse"),
]


@pytest.mark.parametrize(("what", "expected"), VIOLATIONS)
def test_audit_names_each_violation(store: Store, ledger_passes: LedgerPasses, what: str, expected: str) -> None:
    write_ledger(store, [record("a"), record("b"), record("c"), record("r", status="reject")])
    consolidate(store)
    assert audit(store).ok
    if what == "error-in-success":
        tamper(
            store,
            "successes",
            lambda rows: [{**r, "error": "boom"} if r["slug"] == "a" else r for r in rows],
        )
    elif what == "dupe-in-master":
        tamper(store, "successes", lambda rows: [*rows, rows[0]])
    elif what == "in-both":
        rej = json.loads(read_view(store, "rejects"))
        tamper(store, "successes", lambda rows: [*rows, {**rej, "status": "success", "error": None}])
    elif what == "lost":
        tamper(store, "successes", lambda rows: [r for r in rows if r["slug"] != "b"])
    elif what == "not-in-ledger":
        tamper(store, "successes", lambda rows: [*rows, {**rows[0], "slug": "zz", "id": "nope"}])
    elif what == "checkpoint-drift":
        ck = read_checkpoint(store)
        del ck["done"]["a"]
        swap_views(store, {"checkpoint": json.dumps(ck).encode()})
    elif what == "queued-and-done":
        ck = read_checkpoint(store)
        ck["queued"]["a"] = "run-9"
        swap_views(store, {"checkpoint": json.dumps(ck).encode()})
    elif what == "checkpoint-drift-in-place":  # the bytes as consolidate writes them, one entry cut out
        raw = read_view(store, "checkpoint")
        entry = b'"a":' + json.dumps(read_checkpoint(store)["done"]["a"]).encode() + b","
        assert entry in raw
        swap_views(store, {"checkpoint": raw.replace(entry, b"")})
    elif what == "queued-and-done-in-place":
        raw = read_view(store, "checkpoint")
        assert b'"queued":{}' in raw
        swap_views(store, {"checkpoint": raw.replace(b'"queued":{}', b'"queued":{"a":"run-9"}')})
    elif what == "spend-drift":
        usage = json.loads(read_view(store, "usage"))
        usage["cost_nano"] = 1_000_000_000
        swap_views(store, {"usage": json.dumps(usage).encode()})
    elif what == "bad-line":
        store.put("ledger/run-1/other.jsonl", b"this is not json\n")
    result = audit(store)
    assert not result.ok
    assert any(v.startswith(expected) for v in result.violations), result.violations
    ledger_passes.check()


def test_run_over_budget_is_a_violation(store: Store, ledger_passes: LedgerPasses) -> None:
    write_ledger(store, [record("a", cost_usd=0.6), record("b", cost_usd=0.6)])
    consolidate(store)
    assert audit(store).violations == ["invariant 5: run run-1 spent 1.200000 USD over its budget 1.00 USD"]
    ledger_passes.check()


def test_sync_rewrites_the_checkpoint_from_master(store: Store) -> None:
    write_ledger(store, [record("a"), record("r", status="reject")])
    consolidate(store)
    good = read_view(store, "checkpoint")
    swap_views(store, {"checkpoint": b'{"done": {}, "rejected": {}, "queued": {"a": "x"}}'})
    assert not audit(store).ok
    assert sync_checkpoint(store) is True
    assert read_view(store, "checkpoint") == good
    assert audit(store).ok
    assert sync_checkpoint(store) is False


def test_audit_during_another_runs_generation_is_not_a_false_alarm(store: Store, ledger_passes: LedgerPasses) -> None:
    write_ledger(store, [record("a"), record("b")])
    consolidate(store)
    write_ledger(store, [record("c", run="run-2")], segment="live-writer.jsonl")  # appended since
    result = audit(store)
    assert result.ok, result.violations
    assert result.notes == ["1 ledger record(s) appended since the last consolidation"]
    consolidate(store)
    assert audit(store).ok and audit(store).notes == []
    assert "c" in read_checkpoint(store)["done"]
    ledger_passes.check()


def test_records_appended_to_a_consolidated_segment_are_only_appended_since(
    store: Store, ledger_passes: LedgerPasses
) -> None:
    write_ledger(store, [record("a"), record("b")])
    consolidate(store)
    write_ledger(store, [record("a"), record("b"), record("c"), record("d", status="reject")])  # same segment, grown
    result = audit(store)
    assert result.ok, result.violations
    assert result.notes == ["2 ledger record(s) appended since the last consolidation"]
    consolidate(store)
    assert audit(store).ok and audit(store).notes == []
    ledger_passes.check()


def test_audit_waits_for_a_consolidation_in_progress(store: Store) -> None:
    import threading

    from content_pipeline.views.consolidate import views_lock

    write_ledger(store, [record("a")])
    consolidate(store)
    with views_lock(store):
        finished: list[bool] = []
        thread = threading.Thread(target=lambda: finished.append(audit(store).ok))
        thread.start()
        thread.join(0.5)
        assert finished == []  # the audit waits while the views are being written
    thread.join(10)
    assert finished == [True]


def test_a_damaged_master_file_is_a_violation_not_a_crash(store: Store) -> None:
    write_ledger(store, [record("a")])
    consolidate(store)
    swap_views(store, {"successes": b"garbage that is not a record\n"})
    result = audit(store)
    [violation] = result.violations
    assert violation.startswith("invariant 1: master successes is damaged (master/objects/successes-")
    assert "line 1 does not parse: 'garbage that is not a record'" in violation
    assert violation.endswith("run `content-pipeline consolidate` to publish the views again from the ledger")
    consolidate(store)
    assert audit(store).ok


def test_a_master_object_changed_by_hand_fails_the_audit(store: Store) -> None:
    write_ledger(store, [record("a"), record("b")])
    consolidate(store)
    key = read_manifest(store)["files"]["successes"]
    edited = store.get(key).replace(b"gpt-4o-mini", b"gpt-4o-mega")  # still valid records, same ids and slugs
    store.put(key, edited)
    result = audit(store)
    [violation] = result.violations
    assert violation.startswith(f"invariant 3: master successes ({key}) differs from the digest its manifest recorded")
    consolidate(store, verify=True)  # what `content-pipeline consolidate` runs: the edited object is written again
    assert audit(store).ok


KILLED_AT_THE_SWAP = """
import os, signal, sys
from content_pipeline.store import layout, open_store
from content_pipeline.views.consolidate import consolidate

store = open_store(sys.argv[1])
create = store.put_if_absent

def swap(key, data):  # the process dies at the moment it would swap the manifest
    if key.startswith(layout.MANIFEST + "/"):
        os.kill(os.getpid(), signal.SIGKILL)
    return create(key, data)

store.put_if_absent = swap
consolidate(store)
"""


def view_bytes(store: Store) -> dict[str, bytes | None]:
    return read_views(store, *layout.VIEW_FILES)


def test_a_killed_consolidation_leaves_the_previous_snapshot_current_and_the_next_completes_it(
    store: Store, store_url: str
) -> None:
    write_ledger(store, [record("a"), record("b")])
    consolidate(store)
    manifest_before, views_before = manifest_cell(store).read()[0], view_bytes(store)
    write_ledger(store, [record("c", run="run-2"), record("d", run="run-2", status="reject")], "later.jsonl")

    killed = subprocess.run([sys.executable, "-c", KILLED_AT_THE_SWAP, store_url], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    named = set(json.loads(manifest_before)["files"].values())
    leftovers = {i.key for i in store.list(layout.VIEW_OBJECTS)} - named
    assert leftovers, "the killed consolidation had written its new objects"
    assert manifest_cell(store).read()[0] == manifest_before and view_bytes(store) == views_before
    assert not views_current(store)
    result = audit(store)  # the previous snapshot is whole: c and d are only "appended since"
    assert result.ok and result.notes == ["2 ledger record(s) appended since the last consolidation"]

    consolidate(store)  # takes over the dead process's views lease at once, and completes the work
    assert read_master(store, "successes")["slug"].to_list() == ["a", "b", "c"]
    assert read_master(store, "rejects")["slug"].to_list() == ["d"]
    manifest = read_manifest(store)
    kept = set(manifest["files"].values()) | set(manifest["previous_files"].values())
    assert {i.key for i in store.list(layout.VIEW_OBJECTS)} <= kept  # nothing unnamed is left behind
    assert views_current(store) and audit(store).ok and audit(store).notes == []


def test_a_reader_never_sees_half_a_consolidation(store: Store) -> None:
    import threading

    write_ledger(store, [record("s0")])
    consolidate(store)
    stop, seen, mixed = threading.Event(), set(), []

    def read() -> None:
        while not stop.is_set():
            views = read_views(store, "successes", "checkpoint", "usage")
            slugs = {json.loads(line)["slug"] for line in views["successes"].decode().splitlines()}
            checkpoint, usage = json.loads(views["checkpoint"]), json.loads(views["usage"])
            if set(checkpoint["done"]) != slugs or usage["records"] != len(slugs):
                mixed.append((sorted(slugs), sorted(checkpoint["done"]), usage["records"]))
            seen.add(len(slugs))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(1, 12):
            write_ledger(store, [record(f"s{n}")], segment=f"seg-{n}.jsonl")
            consolidate(store)
    finally:
        stop.set()
        reader.join(30)
    assert mixed == []
    assert len(seen) > 2, "the reader ran alongside the consolidations"


def test_periodic_consolidation_keeps_to_its_share_of_the_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A consolidation that took 2 s is not followed by another within 20 s (share 0.1)."""
    clock = [1000.0]
    monkeypatch.setattr(periodic_module.time, "monotonic", lambda: clock[0])

    def slow_consolidation(store: Store, wait_s: float) -> Consolidation:
        clock[0] += 2.0
        return Consolidation(records=0, successes=0, rejects=0)

    monkeypatch.setattr(periodic_module, "consolidate", slow_consolidation)
    periodic = periodic_module.PeriodicConsolidator(store, every=50)
    for successes, advance in ((50, 0.0), (100, 10.0), (150, 8.0), (160, 0.0), (200, 0.0)):
        clock[0] += advance
        periodic(successes)
        periodic.join()
    # 50 runs (1000-1002, next at 1020); 100 at 1012 is too soon; 150 at 1020 runs (next at 1040); 160 is no
    # multiple of 50; 200 at 1022 is too soon
    assert (periodic.runs, periodic.skipped) == (2, 2)


def test_an_outcome_written_twice_counts_once_and_the_audit_names_the_copy(
    store: Store, ledger_passes: LedgerPasses
) -> None:
    done = [record(f"s{n}", at=f"2026-11-23T00:00:0{n}") for n in range(1, 4)]
    again = done[1].model_copy(update={"finished_at": "2026-11-23T00:00:08"})  # a resumed writer's copy
    write_ledger(store, done)
    copy = write_ledger(store, [again], "seg-resumed.jsonl")
    consolidate(store)
    usage = read_usage(store)
    assert usage["records"] == 3 and usage["cost_nano"] == 3 * 100_000  # spend counts it once
    assert usage["by_run"]["run-1"]["successes"] == 3 and usage["tokens_in"] == 300
    assert read_master(store, "successes")["slug"].to_list() == ["s1", "s2", "s3"]
    assert spent_since(store, datetime.fromisoformat("2026-11-23T00:00:00+00:00")) == 3 * 100_000
    found = audit(store)
    assert found.ok, found.violations
    assert found.notes == [f"record {again.id} (s2) is in the ledger twice: the copy at {copy} line 1 is not counted"]
    ledger_passes.check()


def test_each_record_id_is_kept_once_in_the_order_read_a_missing_finish_time_included() -> None:
    ledger = pl.DataFrame(
        {
            "id": ["a", "b", "a", "c", "c"],
            "finished_at": ["2026-11-23T00:00:05", None, "2026-11-23T00:00:01", None, "2026-11-23T00:00:02"],
            "line": [1, 2, 3, 4, 5],
        }
    )
    kept, extra = once_per_id(ledger)
    assert kept["line"].to_list() == [2, 3, 5]  # the earliest finished of each id; b, unfinished, still one
    assert extra["line"].to_list() == [1, 4]
