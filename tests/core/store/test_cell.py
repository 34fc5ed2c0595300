"""Cells (versions created with put-if-absent) and what rests on them, raced on both backends: the claims
queue, lease take-over and release, and the manifest swap; never two winners, never a lost update."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from content_pipeline.claims.queue import read_queue, update_queue
from content_pipeline.errors import LeaseHeldError, StoreIOError
from content_pipeline.store import Store, layout, open_store
from content_pipeline.store.cell import KEEP, Cell
from content_pipeline.store.host import Holder
from content_pipeline.store.lease import Lease, live_lease
from content_pipeline.views.snapshot import load_manifest, read_manifest
from content_pipeline.views.swap import _swap

RACERS = (2, 4, 8)
KEYS = 12  # keys raced for each number of racers


def race(racers: int, body: Callable[[int], object]) -> list[object]:
    """Run `body(i)` for each racer on a thread of its own, all released at once; their results (or errors)."""
    start = threading.Barrier(racers)
    out: list[object] = [None] * racers

    def go(i: int) -> None:
        start.wait()
        try:
            out[i] = body(i)
        except Exception as exc:  # the racer's outcome, asserted on by the test
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a racer did not finish within 60 s"
    return out


def stores(store_url: str, n: int) -> list[Store]:
    """One store (and, on S3, one client and connection pool) per racer, as separate processes would have."""
    return [open_store(store_url) for _ in range(n)]


@pytest.mark.parametrize("racers", RACERS)
def test_of_racers_swapping_the_same_version_exactly_one_wins(store_url: str, racers: int) -> None:
    mine = stores(store_url, racers)
    for k in range(KEYS):
        cells = [Cell(s, f"race/cell-{racers}-{k}") for s in mine]
        assert cells[0].swap(b"v1", 0)
        _, version = cells[0].read()
        won = race(racers, lambda i, cells=cells, version=version: cells[i].swap(f"racer {i}".encode(), version))
        assert won.count(True) == 1, f"key {k}: {won}"
        assert cells[0].read() == (f"racer {won.index(True)}".encode(), version + 1)


@pytest.mark.parametrize("racers", RACERS)
def test_queue_updates_from_racers_lose_none(store_url: str, racers: int) -> None:
    mine = stores(store_url, racers)
    per_racer = 5

    def claim_five(i: int) -> None:
        for n in range(per_racer):

            def change(queue: dict, i: int = i, n: int = n) -> dict:
                entry = queue.setdefault("runs", {}).setdefault(f"run-{i}", {"slugs": []})
                entry["slugs"].append(f"slug-{i}-{n}")
                return queue

            update_queue(mine[i], change)

    assert race(racers, claim_five) == [None] * racers
    queue, version = read_queue(mine[0])
    assert {run: entry["slugs"] for run, entry in queue["runs"].items()} == {
        f"run-{i}": [f"slug-{i}-{n}" for n in range(per_racer)] for i in range(racers)
    }
    assert version == racers * per_racer  # one version per update: none overwrote another


@pytest.mark.parametrize("racers", RACERS)
def test_of_racers_taking_over_an_expired_lease_exactly_one_wins(store_url: str, racers: int) -> None:
    mine = stores(store_url, racers)
    for k in range(KEYS):
        key = f"locks/race-{racers}-{k}"
        gone = Lease(mine[0], key, Holder.me("gone"), 0.05, "the race")
        gone.try_acquire()
        time.sleep(0.1)  # expired, never released
        leases = [Lease(s, key, Holder.me(f"racer-{i}"), 60, "the race") for i, s in enumerate(mine)]
        won = race(racers, lambda i, leases=leases: leases[i].try_acquire())
        winners = [i for i, outcome in enumerate(won) if outcome is None]
        assert len(winners) == 1, f"key {k}: {won}"
        assert all(isinstance(o, LeaseHeldError) for i, o in enumerate(won) if i != winners[0])
        holder, _ = live_lease(mine[0], key)
        assert holder.run_id == f"racer-{winners[0]}"
        assert not gone._renew()  # the old holder can neither renew it ...
        gone.release()  # ... nor release the new holder's
        assert live_lease(mine[0], key)[0].run_id == f"racer-{winners[0]}"


@pytest.mark.parametrize("racers", RACERS)
def test_a_release_racing_a_take_over_never_frees_the_new_holder(store_url: str, racers: int) -> None:
    mine = stores(store_url, racers + 1)
    for k in range(KEYS):
        key = f"locks/release-{racers}-{k}"
        old = Lease(mine[-1], key, Holder.me("old"), 0.05, "the race")
        old.try_acquire()
        time.sleep(0.1)
        leases = [Lease(s, key, Holder.me(f"racer-{i}"), 60, "the race") for i, s in enumerate(mine[:-1])]

        def go(i: int, leases: list[Lease] = leases, old: Lease = old) -> object:
            if i == 0:
                old.release()
                return "released"
            leases[i].try_acquire()
            return "took"

        won = race(racers, go)
        current = live_lease(mine[0], key)
        took = [i for i, outcome in enumerate(won) if outcome == "took"]
        assert len(took) <= 1, f"key {k}: {won}"
        if took:  # whoever took it holds it, whatever order the release came in
            assert current is not None and current[0].run_id == f"racer-{took[0]}"
        else:
            assert current is None


@pytest.mark.parametrize("racers", RACERS)
def test_of_racers_swapping_the_manifest_exactly_one_wins(store: Store, store_url: str, racers: int) -> None:
    mine = stores(store_url, racers)
    for k in range(KEYS):
        _, version, _ = load_manifest(store)
        manifests = [{"files": {}, "snapshot": f"racer-{i}-{k}"} for i in range(racers)]
        won = race(racers, lambda i, version=version, manifests=manifests: _swap(mine[i], manifests[i], version))
        winners = [i for i, outcome in enumerate(won) if outcome is None]
        assert len(winners) == 1, f"key {k}: {won}"
        assert all(isinstance(o, StoreIOError) for i, o in enumerate(won) if i != winners[0])
        assert read_manifest(store)["snapshot"] == f"racer-{winners[0]}-{k}"


def test_old_versions_are_collected_and_a_stale_writer_cannot_bring_one_back(store: Store) -> None:
    cell = Cell(store, "state/counter", retain_s=0.0)  # no retention: collected as soon as KEEP allows
    for n in range(40):
        assert cell.swap(f"{n + 1}".encode(), n)
    assert cell.read() == (b"40", 40)
    assert len(cell.versions()) <= 2 * KEEP
    assert not cell.swap(b"stale", 1)  # read version 1 long ago; version 2 was collected since
    assert cell.read() == (b"40", 40)
    assert not cell.swap(b"stale", 39) and cell.swap(b"41", 40)


def test_a_released_lease_reads_free_and_a_versionless_queue_is_taken_over(store: Store) -> None:
    with Lease(store, "locks/x", Holder.me("a"), 60, "x"):
        assert live_lease(store, "locks/x")[0].run_id == "a"
    assert live_lease(store, "locks/x") is None
    Lease(store, "locks/x", Holder.me("b"), 60, "x").try_acquire()  # a released lease is taken at once

    store.put(layout.LEGACY_QUEUE, json.dumps({"runs": {"old": {"slugs": ["s"], "expires_ts": 0}}}).encode())
    assert read_queue(store) == ({"runs": {"old": {"slugs": ["s"], "expires_ts": 0}}}, 0)
    update_queue(store, lambda q: {"runs": {}})
    assert read_queue(store) == ({"runs": {}}, 1) and store.get(layout.LEGACY_QUEUE) is None


def test_versions_are_kept_for_the_retention_however_many_swaps_follow(store: Store) -> None:
    cell = Cell(store, "state/counter")
    for n in range(40):
        assert cell.swap(f"{n + 1}".encode(), n)
    assert cell.versions() == list(range(1, 41))  # all written within the last RETAIN_S


class PausedAfterCreating:
    """The store, except that once it has created `key` it waits for `meanwhile()`: a writer descheduled
    between creating its version and checking it, the interleaving a loaded machine makes."""

    def __init__(self, store: Store, key: str, meanwhile: Callable[[], None]) -> None:
        self._store, self._key, self._meanwhile = store, key, meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        created = self._store.put_if_absent(key, data)
        if created and key == self._key:
            self._meanwhile()
        return created


@pytest.mark.parametrize("before", [0, KEEP - 1])
def test_a_slow_writer_whose_version_others_built_on_is_told_it_won(store_url: str, before: int) -> None:
    """Others build KEEP + 1 versions on the slow writer's before it checks the version it read: its swap
    won, and an update retried as if it had lost would be applied twice (a claim queued twice)."""
    cell = Cell(open_store(store_url), "state/slow")
    for n in range(before):
        assert cell.swap(f"{n + 1}".encode(), n)

    def meanwhile() -> None:
        for _ in range(KEEP + 1):
            data, version = cell.read()
            assert cell.swap((data or b"") + b"+", version)

    paused = PausedAfterCreating(open_store(store_url), cell.key(before + 1), meanwhile)
    slow = Cell(paused, "state/slow")  # type: ignore[arg-type]
    assert slow.swap(b"mine", before)
    assert cell.read() == (b"mine" + b"+" * (KEEP + 1), before + KEEP + 2)


class ListsEmptyOnce:
    """The store, except that its first listing comes back empty: a directory read racing a swap and a
    collection on a local filesystem can miss every entry it was told about."""

    def __init__(self, store: Store) -> None:
        self._store, self._listed = store, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def list(self, prefix: str) -> list[Any]:
        if not self._listed:
            self._listed = True
            return []
        return self._store.list(prefix)


def test_a_writer_that_missed_every_version_cannot_make_the_first_again(store_url: str) -> None:
    """Released, then read as if never written: the first version is still there, so the stale writer
    loses and, reading again, finds the lease taken since."""
    store = open_store(store_url)
    old = Lease(store, "locks/empty", Holder.me("old"), 60, "x")
    old.try_acquire()
    old.release()
    Lease(store, "locks/empty", Holder.me("holder"), 60, "x").try_acquire()
    stale = Lease(ListsEmptyOnce(open_store(store_url)), "locks/empty", Holder.me("stale"), 60, "x")  # type: ignore[arg-type]
    with pytest.raises(LeaseHeldError, match="held by run holder"):
        stale.try_acquire()
    assert live_lease(store, "locks/empty")[0].run_id == "holder"
