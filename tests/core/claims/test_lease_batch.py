"""The batch-builder lease and claims: one live builder, nothing claimed twice, dead runs never block."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from content_pipeline.claims.batch import build_batch
from content_pipeline.claims.queue import claim, held_elsewhere, live_claims, read_queue, release
from content_pipeline.errors import LeaseHeldError, LeaseLostError
from content_pipeline.intake.catalogue import Item
from content_pipeline.run.reporter import PlainReporter
from content_pipeline.run.stages import Stages
from content_pipeline.settings import load_settings
from content_pipeline.store import Store, layout
from content_pipeline.store.cell import Cell
from content_pipeline.store.host import Holder, this_host
from content_pipeline.store.lease import Lease, live_lease
from tests.conftest import make_item
from tests.support.helpers import until


def items(n: int) -> list[Item]:
    return [Item(**make_item(i)) for i in range(1, n + 1)]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_builder_fails_at_once_naming_holder_and_expiry(store: Store) -> None:
    holder = Lease(store, layout.BATCH_LOCK, Holder.me("run-a"), 60, "the batch builder")
    with holder:
        started = time.monotonic()
        with pytest.raises(LeaseHeldError) as err:
            build_batch(store, "run-b", items(5), 5, pid=None, lease_ttl_s=60, claim_ttl_s=60)
        assert time.monotonic() - started < 2
    message = str(err.value)
    assert "the batch builder is already running" in message
    assert "run run-a" in message and f"on {this_host()}" in message
    assert "until 20" in message  # the ISO expiry
    assert read_queue(store)[0] == {"runs": {}}
    assert store.get(layout.run_key("run-b", "batch.jsonl")) is None


def test_expired_lease_is_taken_over(store: Store) -> None:
    Cell(store, layout.BATCH_LOCK).swap(
        json.dumps(
            {"host": "elsewhere", "pid": 1, "run_id": "old", "token": "t", "expires_ts": time.time() - 1}
        ).encode(),
        0,
    )
    batch, _, took_over = build_batch(store, "run-new", items(3), 3, pid=None, lease_ttl_s=60, claim_ttl_s=60)
    assert len(batch) == 3
    assert took_over == "run old (pid 1 on elsewhere)"
    assert live_lease(store, layout.BATCH_LOCK) is None  # released after the batch was built


def test_lease_of_a_dead_process_on_this_host_is_stale_at_once(store: Store) -> None:
    Cell(store, layout.BATCH_LOCK).swap(
        json.dumps(
            {"host": this_host(), "pid": dead_pid(), "run_id": "killed", "token": "t", "expires_ts": time.time() + 3600}
        ).encode(),
        0,
    )
    batch, _, took_over = build_batch(store, "run-next", items(2), 2, pid=None, lease_ttl_s=60, claim_ttl_s=60)
    assert len(batch) == 2 and took_over.startswith("run killed")


def test_a_zombie_holder_is_dead(store: Store) -> None:
    """A killed process its parent never reaps (a container's PID 1 that does not) still answers signal 0:
    it must count as gone, or its lease and claims block every later run until they expire."""
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        zombie.kill()
        until(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z", 10)
        os.kill(zombie.pid, 0)  # still there for signal 0
        assert Holder(this_host(), zombie.pid, "zombie").gone()
        assert not Holder(this_host(), os.getpid(), "me").gone()
        Cell(store, layout.BATCH_LOCK).swap(
            json.dumps(
                {
                    "host": this_host(),
                    "pid": zombie.pid,
                    "run_id": "zombie",
                    "token": "t",
                    "expires_ts": time.time() + 3600,
                }
            ).encode(),
            0,
        )
        batch, _, took_over = build_batch(store, "run-next", items(2), 2, pid=None, lease_ttl_s=60, claim_ttl_s=60)
        assert len(batch) == 2 and took_over.startswith("run zombie")
    finally:
        zombie.wait()


def test_live_holder_renews_its_lease_past_the_ttl(store: Store) -> None:
    with Lease(store, "locks/x", Holder.me("a"), 0.6, "x"):
        time.sleep(1.5)
        with pytest.raises(LeaseHeldError):
            Lease(store, "locks/x", Holder.me("b"), 0.6, "x").try_acquire()


def test_claims_are_stamped_with_the_run_and_never_given_twice(store: Store, store_url: str) -> None:
    """The batch stage: claims under the lease, and the run's batch file holds what it claimed."""
    needs = items(10)

    def batch(run_id: str) -> list[Item]:
        settings = load_settings(store_url=store_url, limit=6, run_id=run_id)
        return Stages(settings, store, PlainReporter()).batch(needs, hold=False)

    first, second = batch("run-a"), batch("run-b")
    assert len(first) == 6 and len(second) == 4
    assert not {i.slug for i in first} & {i.slug for i in second}
    claims = live_claims(store, read_queue(store)[0])
    assert {claims[i.slug] for i in first} == {"run-a"}
    batch_file = store.get(layout.run_key("run-a", "batch.jsonl")).decode().splitlines()
    assert [json.loads(line)["slug"] for line in batch_file] == [i.slug for i in first]


def test_claiming_again_for_the_same_run_is_idempotent(store: Store) -> None:
    needs = items(5)
    a, _ = claim(store, "run-a", [i.slug for i in needs], 3, None, 600)
    b, _ = claim(store, "run-a", [i.slug for i in needs], 3, None, 600)
    assert a == b and len(a) == 3


def test_claims_of_a_gone_run_become_claimable(store: Store) -> None:
    needs = items(4)
    claim(store, "expired", [i.slug for i in needs[:2]], 2, None, -1)
    claim(store, "killed", [i.slug for i in needs[2:]], 2, dead_pid(), 3600)
    got, freed = claim(store, "run-next", [i.slug for i in needs], 4, None, 600)
    assert got == [i.slug for i in needs]
    assert freed == ["killed"]  # "expired" was already freed when "killed" claimed
    assert set(read_queue(store)[0]["runs"]) == {"run-next"}


def test_release_frees_the_claims_and_touches_nothing_else(store: Store) -> None:
    needs = items(4)
    claim(store, "run-a", [i.slug for i in needs[:2]], 2, None, 600)
    claim(store, "run-b", [i.slug for i in needs[2:]], 2, None, 600)
    release(store, "run-a")
    assert set(live_claims(store, read_queue(store)[0]).values()) == {"run-b"}
    before = {i.key: store.get(i.key) for i in store.list("")}
    release(store, "run-a")
    assert {i.key: store.get(i.key) for i in store.list("")} == before


def test_go_live_waits_for_a_builder_that_is_claiming(store: Store) -> None:
    import threading

    holder = Lease(store, layout.BATCH_LOCK, Holder.me("run-a"), 60, "the batch builder")
    holder.acquire()
    threading.Timer(0.5, holder.release).start()
    batch, _, took_over = build_batch(store, "run-b", items(3), 3, pid=None, lease_ttl_s=60, claim_ttl_s=60, wait_s=10)
    assert len(batch) == 3 and took_over is None


def test_a_second_process_with_the_same_run_id_fails_at_once(store: Store) -> None:
    from content_pipeline.claims.batch import run_lease

    first = run_lease(store, "run-r", 60)
    try:
        with pytest.raises(LeaseHeldError, match=r"^run run-r is already running: lease held by run run-r \(pid "):
            run_lease(store, "run-r", 60)
    finally:
        first.release()
    run_lease(store, "run-r", 60).release()


def test_a_runs_claims_live_with_its_lease_and_are_named_to_the_others(store: Store) -> None:
    from content_pipeline.claims.batch import run_lease

    lease = run_lease(store, "long-run", 0.6)  # renewed every 0.2 s while the run lives
    claim(store, "long-run", ["a", "b"], 2, os.getpid(), 0.6)
    time.sleep(1.5)
    got, _ = claim(store, "other", ["a", "b"], 2, os.getpid(), 60)
    [held] = held_elsewhere(store, "other")
    assert got == [] and held.describe().startswith(f"2 item(s) held by run long-run (pid {os.getpid()} on ")
    lease.release()
    got, freed = claim(store, "other", ["a", "b"], 2, os.getpid(), 60)
    assert got == ["a", "b"] and freed == ["long-run"] and held_elsewhere(store, "after") == []


def test_a_run_that_stops_renewing_loses_its_claims_and_its_lease_within_a_lifetime(store: Store) -> None:
    """Frozen (its renewals stopped, as a paused VM's are): another run takes its items once its lease has
    expired, and the frozen run, resumed, finds its lease gone at its next check instead of paying for them."""
    from content_pipeline.claims.batch import run_lease

    frozen = run_lease(store, "frozen", 0.6)
    claim(store, "frozen", ["a", "b"], 2, os.getpid(), 3600)
    assert frozen._renewal is not None
    frozen._renewal.stop()
    time.sleep(0.8)
    got, freed = claim(store, "next", ["a", "b"], 2, os.getpid(), 3600)
    assert got == ["a", "b"] and freed == ["frozen"]
    with pytest.raises(
        LeaseLostError,
        match=r"^run frozen: lost the lease 'locks/run-frozen' to nobody \(another process released it as gone",
    ):
        frozen.check("the call for a")


def test_the_batch_commands_claims_are_kept_for_generate_and_shown_by_sweep(store: Store) -> None:
    from content_pipeline.claims.sweep import sweep

    claim(store, "staged", ["k"], 1, None, 3600)  # no process holds them: kept until CLAIM_TTL_S passes
    swept = sweep(store)
    [kept] = held_elsewhere(store, "other")
    assert swept.lines == [] and swept.kept == [f"{kept.describe()} for its generate stage (CLAIM_TTL_S)"]
    assert kept.describe().startswith("1 item(s) kept by run staged's batch command until ")
    assert claim(store, "other", ["k"], 1, os.getpid(), 60)[0] == []


def test_a_corrupt_queue_is_one_clear_line(store: Store) -> None:
    from content_pipeline.errors import StoreError

    queue = Cell(store, layout.QUEUE)
    queue.swap(b"{not json", 0)
    with pytest.raises(
        StoreError, match=r"^state/queue/000000000001.json is not a claims queue \(damaged\): nothing was"
    ):
        build_batch(store, "run-a", items(2), 2, pid=None, lease_ttl_s=60, claim_ttl_s=60)
    assert queue.read() == (b"{not json", 1)


def test_a_holder_paused_past_its_lease_keeps_it_until_taken_over_then_stops_at_its_check(store: Store) -> None:
    paused = Lease(store, layout.BATCH_LOCK, Holder("elsewhere", 0, "run-a"), 0.3, "the batch builder")
    paused.try_acquire()  # no renewal thread: a frozen process renews nothing
    time.sleep(0.4)
    paused.check("claiming item-0001")  # expired, yet nobody took it over: the check renews it
    assert live_lease(store, layout.BATCH_LOCK) is not None
    time.sleep(0.4)
    other = Lease(store, layout.BATCH_LOCK, Holder.me("run-b"), 60, "the batch builder")
    other.try_acquire()
    with pytest.raises(LeaseLostError) as lost:
        paused.check("claiming item-0002")
    taker = f"run run-b (pid {os.getpid()} on {this_host()})"
    assert str(lost.value) == (
        f"the batch builder: lost the lease {layout.BATCH_LOCK!r} to {taker}: stopped before claiming item-0002"
    )
    paused.release()  # harmless: the new holder keeps it
    assert live_lease(store, layout.BATCH_LOCK) == (other.holder, pytest.approx(time.time() + 60, abs=5))
    other.release()
