"""The claims queue: each run's claimed slugs with the process that holds them and their expiry."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from content_pipeline.errors import StoreError
from content_pipeline.store import Store, layout
from content_pipeline.store.cell import Cell
from content_pipeline.store.host import Holder, this_host
from content_pipeline.store.lease import gone_because

Queue = dict[str, Any]


def queue_cell(store: Store) -> Cell:
    """The claims queue's cell (versions under `state/queue/`)."""
    return Cell(store, layout.QUEUE, legacy=layout.LEGACY_QUEUE)


def read_queue(store: Store) -> tuple[Queue, int]:
    """The queue and its version (0 before the first claim)."""
    cell = queue_cell(store)
    raw, version = cell.read()
    if raw is None:
        return {"runs": {}}, version
    try:
        queue = json.loads(raw)
        if not isinstance(queue, dict) or not isinstance(queue.get("runs", {}), dict):
            raise ValueError
    except ValueError:
        raise StoreError(
            f"{cell.where(version)} is not a claims queue (damaged): nothing was claimed; delete that object to fall back "
            "to the version before it (or to no claims at all)"
        ) from None
    return queue, version


def claims_holder(run_id: str, entry: dict[str, Any]) -> Holder:
    """The process holding a run's claims (pid 0: none, the batch command's claims live by their expiry)."""
    return Holder(str(entry.get("host", "")), int(entry.get("pid") or 0), run_id)


def run_alive(entry: dict[str, Any], now: float | None = None, run_id: str = "") -> bool:
    """A run's claims live until they expire, or until its process is known gone from this host."""
    expires = float(entry.get("expires_ts", 0))
    return gone_because(claims_holder(run_id, entry), expires, now or time.time()) is None


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
    """Read-modify-write of the queue with compare-and-swap, retried on a concurrent change; a change that
    changes nothing writes nothing."""
    cell = queue_cell(store)
    for _ in range(50):
        queue, version = read_queue(store)
        new = change(json.loads(json.dumps(queue)))
        if new == queue and version:  # nothing changed: nothing to write
            return new
        if cell.swap(json.dumps(new, sort_keys=True).encode(), version):
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
