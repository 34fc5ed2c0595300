"""Sweep: the leases and queued claims of runs that are gone, released, each one named."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from content_pipeline.claims.queue import Queue, claims_holder, read_queue, update_queue
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


def _sweep_claims(store: Store, now: float, grace_s: float, swept: Swept, dry_run: bool) -> None:
    freed: list[str] = []
    claimed: list[tuple[int, float]] = []

    def change(queue: Queue) -> Queue:
        freed.clear()  # (tried again on a concurrent change: counted afresh)
        claimed.clear()
        kept: dict[str, Any] = {}
        for run_id, entry in queue.get("runs", {}).items():
            holder = claims_holder(run_id, entry)
            why = gone_because(holder, float(entry.get("expires_ts", 0)), now, grace_s)
            if why is None:
                kept[run_id] = entry
            else:
                slugs = len(entry.get("slugs", []))
                claimed.append((slugs, float(entry.get("claimed_at") or entry.get("expires_ts") or 0)))
                freed.append(
                    f"{slugs} claim(s) of {holder.describe()} {_released(dry_run)} (they need content again): {why}"
                )
        return {**queue, "runs": kept}

    if dry_run:
        change(read_queue(store)[0])
    else:
        update_queue(store, change)
    swept.claims += freed
    swept.claimed += claimed


def sweep(store: Store, grace_s: float = 0.0, now: float | None = None, dry_run: bool = False) -> Swept:
    """Release every lease and the queued claims of every run that is gone; a second sweep releases
    nothing. A lease or claims whose holder is live (not expired, and on this host its process alive) are
    left alone. With `dry_run` (or on a read-only store) nothing is released: the lines say what would be."""
    dry_run = dry_run or store.read_only
    moment = time.time() if now is None else now
    swept = Swept()
    _sweep_leases(store, moment, grace_s, swept, dry_run)
    _sweep_claims(store, moment, grace_s, swept, dry_run)
    return swept
