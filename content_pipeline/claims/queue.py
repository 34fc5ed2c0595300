"""The claims queue: each run's claimed slugs with the process that holds them and their expiry."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from content_pipeline.errors import StoreError
from content_pipeline.store import Store, layout
from content_pipeline.store.cell import Cell
from content_pipeline.store.host import Holder, this_host
from content_pipeline.store.lease import gone_because, iso_at, lease_holder

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
    """The process that claimed (pid 0: none, the batch command's claims are kept until they expire)."""
    return Holder(str(entry.get("host", "")), int(entry.get("pid") or 0), run_id)


@dataclass(frozen=True)
class RunClaims:
    """One run's claims as they stand: who holds them until when, and why they count as gone (None while
    they live). A run's claims live as long as its run lease (renewed every third of LEASE_TTL_S while the
    run lives, so a dead host's claims are free a lease lifetime after its last renewal); the batch
    command's claims, made with no process to hold them, are kept for the run's generate stage until they
    expire (CLAIM_TTL_S)."""

    run_id: str
    slugs: list[str]
    holder: Holder
    until: float
    kept: bool
    claimed_at: float
    gone: str | None
    lease_version: int = 0  # the run lease's version read (0: none), released only if still current

    def describe(self) -> str:
        if self.kept:
            return f"{len(self.slugs)} item(s) kept by run {self.run_id}'s batch command until {iso_at(self.until)}"
        return f"{len(self.slugs)} item(s) held by {self.holder.describe()} until {iso_at(self.until)}"


def judge(store: Store, run_id: str, entry: dict[str, Any], now: float, grace_s: float = 0.0) -> RunClaims:
    """A run's claims, judged by the one rule for holders (`gone_because`): its run lease's holder and
    expiry; for kept claims, or while the run lease was never taken, the claims' own process and expiry."""
    holder, until = claims_holder(run_id, entry), float(entry.get("expires_ts", 0))
    slugs, kept = list(entry.get("slugs", [])), not holder.pid
    claimed_at = float(entry.get("claimed_at") or entry.get("expires_ts") or 0)
    raw, version = (None, 0) if kept else Cell(store, layout.run_lock(run_id)).read()
    if raw is not None:
        leased, until = lease_holder(raw)
        holder = leased or holder
        gone = gone_because(leased, until, now, grace_s)
        return RunClaims(run_id, slugs, holder, until, kept, claimed_at, gone, version)
    gone = gone_because(holder, until, now, grace_s)
    if gone is None and not kept:
        gone = "its run lease is not held"
    return RunClaims(run_id, slugs, holder, until, kept, claimed_at, gone)


def all_claims(store: Store, queue: Queue, now: float | None = None, grace_s: float = 0.0) -> list[RunClaims]:
    """Every run's claims in the queue, judged now."""
    moment = time.time() if now is None else now
    return [judge(store, run_id, entry, moment, grace_s) for run_id, entry in queue.get("runs", {}).items()]


def live_claims(store: Store, queue: Queue) -> dict[str, str]:
    """slug -> run id for every claim of a live run."""
    out: dict[str, str] = {}
    for claims in all_claims(store, queue):
        if claims.gone is None:
            for slug in claims.slugs:
                out.setdefault(slug, claims.run_id)
    return out


def held_elsewhere(store: Store, run_id: str) -> list[RunClaims]:
    """The live claims of every run but `run_id`: what this run cannot claim, and who holds it."""
    return [c for c in all_claims(store, read_queue(store)[0]) if c.run_id != run_id and c.gone is None and c.slugs]


def let_go_of_leases(store: Store, gone: list[RunClaims]) -> None:
    """Release the run leases of gone runs before their claims are freed, each only if no one renewed or took
    it since it was judged: a holder that was only frozen finds its lease lost at its next check and stops
    before it pays for an item that is now another run's."""
    for claims in gone:
        if claims.lease_version:
            Cell(store, layout.run_lock(claims.run_id)).release(claims.lease_version)


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
    With `pid` the claims live with the run's lease (its holder claims them); without, they are kept until
    `ttl_s` passes. A run's own earlier claims are kept (claiming again is idempotent)."""
    let_go_of_leases(store, [c for c in all_claims(store, read_queue(store)[0]) if c.gone and c.run_id != run_id])
    freed: list[str] = []
    chosen: list[str] = []

    def change(queue: Queue) -> Queue:
        runs = queue.setdefault("runs", {})
        now = time.time()
        freed[:] = [c.run_id for c in all_claims(store, queue, now) if c.run_id != run_id and c.gone]
        for other in freed:
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


def adopt(store: Store, run_id: str, pid: int) -> list[str]:
    """Make this process, which holds the run's lease, the holder of `run_id`'s claims (the generate stage
    run on its own): from now on they live with that lease. Returns the slugs."""
    slugs: list[str] = []

    def change(queue: Queue) -> Queue:
        entry = queue.setdefault("runs", {}).get(run_id)
        if entry:
            entry.update(host=this_host(), pid=pid)
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
