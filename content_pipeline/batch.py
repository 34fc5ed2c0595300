"""The batch: claim items for a run under the batch-builder lease, stamped queued with the run id."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from content_pipeline import layout
from content_pipeline.catalogue import Item
from content_pipeline.errors import StoreError
from content_pipeline.host import Holder, this_host
from content_pipeline.lease import Lease
from content_pipeline.store import Store

Queue = dict[str, Any]


def read_queue(store: Store) -> tuple[Queue, str | None]:
    found = store.get_versioned(layout.QUEUE)
    if found is None:
        return {"runs": {}}, None
    try:
        queue = json.loads(found[0])
    except json.JSONDecodeError:
        raise StoreError(
            f"{layout.QUEUE} is not valid JSON: nothing was claimed; restore it or remove it to free every claim"
        ) from None
    return queue, found[1]


def run_alive(entry: dict[str, Any], now: float | None = None) -> bool:
    """A run's claims live until they expire, or until its process is known gone from this host."""
    if entry.get("expires_ts", 0) < (now or time.time()):
        return False
    pid = entry.get("pid")
    return not (pid and Holder(entry["host"], int(pid), "").gone())


def live_claims(queue: Queue) -> dict[str, str]:
    """slug -> run id for every claim of a live run."""
    now = time.time()
    out: dict[str, str] = {}
    for run_id, entry in queue.get("runs", {}).items():
        if run_alive(entry, now):
            for slug in entry.get("slugs", []):
                out.setdefault(slug, run_id)
    return out


def update_queue(store: Store, change: Callable[[Queue], Queue]) -> Queue:
    """Read-modify-write of the queue with compare-and-swap, retried on a concurrent change."""
    for _ in range(50):
        queue, version = read_queue(store)
        new = change(json.loads(json.dumps(queue)))
        data = json.dumps(new, sort_keys=True).encode()
        done = (
            store.put_if_absent(layout.QUEUE, data)
            if version is None
            else store.put_if_match(layout.QUEUE, data, version)
        )
        if done:
            return new
        time.sleep(0.01)
    raise StoreError("the queue kept changing under us: 50 compare-and-swap attempts failed")


def claim(
    store: Store, run_id: str, candidates: list[str], limit: int, pid: int | None, ttl_s: float
) -> tuple[list[str], list[str]]:
    """Claim up to `limit` candidates for `run_id`; returns (claimed slugs, runs whose stale claims were freed).
    A run's own earlier claims are kept (claiming again is idempotent)."""
    freed: list[str] = []
    chosen: list[str] = []

    def change(queue: Queue) -> Queue:
        runs = queue.setdefault("runs", {})
        now = time.time()
        freed.clear()
        for other in [r for r, e in runs.items() if r != run_id and not run_alive(e, now)]:
            freed.append(other)
            del runs[other]
        taken = {slug for r, e in runs.items() if r != run_id for slug in e.get("slugs", [])}
        mine = list(runs.get(run_id, {}).get("slugs", []))
        have = set(mine)
        for slug in candidates:
            if len(mine) >= limit:
                break
            if slug not in taken and slug not in have:
                mine.append(slug)
                have.add(slug)
        chosen[:] = mine
        runs[run_id] = {"host": this_host(), "pid": pid, "claimed_at": now, "expires_ts": now + ttl_s, "slugs": mine}
        return queue

    update_queue(store, change)
    return list(chosen), freed


def adopt(store: Store, run_id: str, pid: int, ttl_s: float) -> list[str]:
    """Make this process the holder of `run_id`'s claims (a stage run on its own); returns the slugs."""
    slugs: list[str] = []

    def change(queue: Queue) -> Queue:
        entry = queue.setdefault("runs", {}).get(run_id)
        if entry:
            entry.update(host=this_host(), pid=pid, expires_ts=time.time() + ttl_s)
            slugs[:] = entry.get("slugs", [])
        return queue

    update_queue(store, change)
    return slugs


def release(store: Store, run_id: str) -> None:
    """Drop `run_id`'s claims: what it did not finish becomes claimable again."""

    def change(queue: Queue) -> Queue:
        queue.setdefault("runs", {}).pop(run_id, None)
        return queue

    update_queue(store, change)


def write_items(store: Store, key: str, items: list[Item]) -> None:
    store.put(key, "".join(item.model_dump_json() + "\n" for item in items).encode())


def build_batch(
    store: Store,
    run_id: str,
    needs: list[Item],
    limit: int,
    *,
    pid: int | None,
    lease_ttl_s: float,
    claim_ttl_s: float,
    wait_s: float = 0.0,
) -> tuple[list[Item], list[str], str | None]:
    """Claim up to `limit` of `needs` under the batch-builder lease and write the run's batch file.
    Returns (batch, runs freed, holder taken over). With `wait_s` a live holder is waited for that long
    (it holds the lease only while it claims); without, a held lease fails at once. A read-only store only
    shows what would be claimed."""
    if store.read_only:
        taken = live_claims(read_queue(store)[0])
        return [i for i in needs if taken.get(i.slug, run_id) == run_id][:limit], [], None
    lease = Lease(store, layout.BATCH_LOCK, Holder.me(run_id), lease_ttl_s, "the batch builder")
    lease.acquire(wait_s)
    try:
        slugs, freed = claim(store, run_id, [item.slug for item in needs], limit, pid, claim_ttl_s)
    finally:
        lease.release()
    by_slug = {item.slug: item for item in needs}
    batch = [by_slug[slug] for slug in slugs if slug in by_slug]
    write_items(store, layout.run_key(run_id, "batch.jsonl"), batch)
    return batch, freed, lease.took_over


def run_lease(store: Store, run_id: str, ttl_s: float) -> Lease:
    """Take the run's own lease: a second process with the same run id fails at once instead of
    generating (and paying for) the same items again."""
    lease = Lease(store, layout.run_lock(run_id), Holder.me(run_id), ttl_s, f"run {run_id}")
    lease.acquire()
    return lease


class ClaimKeeper:
    """Renews a run's claims in the background while it generates, so they never expire under a live run."""

    def __init__(self, store: Store, run_id: str, ttl_s: float) -> None:
        self.store, self.run_id, self.ttl_s = store, run_id, ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"claims-{run_id}", daemon=True)
        if not store.read_only:
            self._thread.start()

    def _renew(self, queue: Queue) -> Queue:
        entry = queue.get("runs", {}).get(self.run_id)
        if entry:
            entry["expires_ts"] = time.time() + self.ttl_s
        return queue

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                update_queue(self.store, self._renew)
            except StoreError:
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
