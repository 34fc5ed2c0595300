"""Sweep: the leases and queued claims of runs that are gone, released, each one named."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from content_pipeline.claims.queue import Queue, RunClaims, all_claims, read_queue, update_queue
from content_pipeline.store import Store
from content_pipeline.store.cell import Cell
from content_pipeline.store.lease import gone_because, lease_holder, lease_keys


@dataclass
class Swept:
    """What a sweep released: one line per lease and per run whose claims were freed; and for those
    claims, how many slugs each run held and when it claimed them (UNIX time)."""

    leases: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    claimed: list[tuple[int, float]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # live claims the batch command keeps for a generate stage

    @property
    def lines(self) -> list[str]:
        return self.leases + self.claims


def _sweep_leases(store: Store, now: float, grace_s: float, swept: Swept, dry_run: bool) -> None:
    for base in lease_keys(store):
        cell = Cell(store, base)
        raw, version = cell.read()
        if raw is None:  # free, or released already
            continue
        holder, expires = lease_holder(raw)
        why = gone_because(holder, expires, now, grace_s)
        if why is not None and (dry_run or cell.release(version)):  # only if no one took or renewed it since
            who = holder.describe() if holder is not None else "no readable holder"
            swept.leases.append(f"lease {base} of {who} {_released(dry_run)}: {why}")


def _released(dry_run: bool) -> str:
    return "would be released" if dry_run else "released"


def _sweep_claims(store: Store, judged: list[RunClaims], swept: Swept, dry_run: bool) -> None:
    gone = {c.run_id: c for c in judged if c.gone is not None}
    swept.kept = [f"{c.describe()} for its generate stage (CLAIM_TTL_S)" for c in judged if c.kept and not c.gone]
    swept.claims = [
        f"{len(c.slugs)} claim(s) of {c.holder.describe()} {_released(dry_run)} (they need content again): {c.gone}"
        for c in gone.values()
    ]
    swept.claimed = [(len(c.slugs), c.claimed_at) for c in gone.values()]
    if dry_run or not gone:
        return

    def change(queue: Queue) -> Queue:
        return {**queue, "runs": {r: e for r, e in queue.get("runs", {}).items() if r not in gone}}

    update_queue(store, change)


def sweep(store: Store, grace_s: float = 0.0, now: float | None = None, dry_run: bool = False) -> Swept:
    """Release every lease and the queued claims of every run that is gone; a second sweep releases
    nothing. A lease or claims whose holder is live (not expired, and on this host its process alive) are
    left alone; claims the batch command keeps for a run's generate stage are named. With `dry_run` (or on
    a read-only store) nothing is released: the lines say what would be."""
    dry_run = dry_run or store.read_only
    moment = time.time() if now is None else now
    swept = Swept()
    judged = all_claims(store, read_queue(store)[0], moment, grace_s)  # judged by their run leases, not yet swept
    _sweep_leases(store, moment, grace_s, swept, dry_run)
    _sweep_claims(store, judged, swept, dry_run)
    return swept
