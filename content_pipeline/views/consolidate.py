"""Consolidation: every view rebuilt from the ledger under the views lease, idempotent; sync of the checkpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

from content_pipeline.claims.queue import live_claims, read_queue
from content_pipeline.errors import LeaseHeldError
from content_pipeline.ledger.quarantine import damaged_intents, damaged_records, held_slugs, keep_aside
from content_pipeline.ledger.scan import fingerprint_of
from content_pipeline.store import Store, layout
from content_pipeline.store.host import Holder
from content_pipeline.store.lease import Lease
from content_pipeline.views.checkpoint import Checkpoint, build_checkpoint, checkpoint_bytes
from content_pipeline.views.master import slug_index
from content_pipeline.views.passes import Derived, derive
from content_pipeline.views.snapshot import (
    ViewDamagedError,
    dump_json,
    read_checkpoint,
    read_json_views,
    read_master,
    views_current,
)
from content_pipeline.views.swap import LedgerLines, View, swap_views


@dataclass
class Consolidation:
    """What one consolidation found and wrote."""

    records: int
    successes: int
    rejects: int
    changed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    torn_tails: list[str] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def _telemetry(store: Store, result: Consolidation) -> None:
    """One line per consolidation that changed or repaired something."""
    line = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ledger_records": result.records,
        "successes": result.successes,
        "rejects": result.rejects,
        "changed": result.changed,
        "repaired": result.repaired,
        "bad_lines": len(result.bad_lines),
        "duration_ms": round(result.duration_s * 1000, 1),
    }
    appender = store.appender(layout.TELEMETRY)
    try:
        appender.append((json.dumps(line) + "\n").encode())
    finally:
        appender.close()


def _write_views(store: Store, derived: Derived, verify: bool = False) -> Consolidation:
    start = time.perf_counter()
    successes, rejects, scan = derived.successes, derived.rejects, derived.scan
    claims = live_claims(store, read_queue(store)[0])
    damaged = damaged_records(store, scan) + damaged_intents(store, derived.intents)
    if not store.read_only:
        keep_aside(store, damaged)
    outputs: dict[str, View] = {
        "successes": LedgerLines(successes.select("seg", "line"), scan.segments),
        "rejects": LedgerLines(rejects.select("seg", "line"), scan.segments),
        "processed": slug_index(successes),
        "rejected": slug_index(rejects),
        "usage": dump_json(derived.usage),
        "checkpoint": checkpoint_bytes(successes, rejects, claims, held_slugs(store, damaged)),
        "superseded": dump_json(derived.superseded),
    }
    result = Consolidation(derived.usage["records"], successes.height, rejects.height)
    result.repaired, result.torn_tails, result.bad_lines = scan.repaired, scan.torn_tails, scan.bad_lines
    # every view of this consolidation becomes current at once, with the ledger snapshot it was built from
    contents = scan.contents(store)
    state = {"fingerprint": fingerprint_of(contents), "segments": scan.segments, "contents": contents}
    result.changed = swap_views(store, outputs, state, verify=verify)
    if store.read_only:
        return result
    result.duration_s = time.perf_counter() - start
    if result.changed or result.repaired:
        _telemetry(store, result)
    return result


@contextmanager
def views_lock(store: Store, wait_s: float = 60.0, ttl_s: float = 60.0) -> Iterator[None]:
    """Hold the views lease: consolidate and sync write the views under it, and the audit reads them
    under it, so it never sees master from one consolidation and the checkpoint from another."""
    if store.read_only:
        yield
        return
    lease = Lease(store, layout.CONSOLIDATE_LOCK, Holder.me("views"), ttl_s, "consolidation")
    lease.acquire(wait_s)
    try:
        yield
    finally:
        lease.release()


def consolidate(store: Store, *, wait_s: float = 60.0, verify: bool = False) -> Consolidation | None:
    """Rebuild every view from the ledger under the views lease; idempotent. With wait_s=0 a
    consolidation already running elsewhere makes this one a no-op (None). With `verify`, views whose
    objects were changed by hand are written again even when the ledger did not change."""
    try:
        with views_lock(store, wait_s):
            return _write_views(store, derive(store, repair=not store.read_only), verify)
    except LeaseHeldError:
        if wait_s == 0:
            return None
        raise


def sync_checkpoint(store: Store) -> bool:
    """The checkpoint from master (and the live claims and held slugs); True when it changed."""
    with views_lock(store):
        successes = read_master(store, "successes")
        rejects = read_master(store, "rejects")
        claims = live_claims(store, read_queue(store)[0])
        checkpoint = checkpoint_bytes(successes, rejects, claims, held_slugs(store))
        return bool(swap_views(store, {"checkpoint": checkpoint}))


def current_checkpoint(store: Store, repaired: list[str] | None = None) -> Checkpoint:
    """The checkpoint as the ledger stands now: rebuilt first when stale (in memory for read-only runs).
    Damaged views are rebuilt from the ledger, and what was damaged is added to `repaired`."""
    if store.read_only:
        if views_current(store):
            with suppress(ViewDamagedError):
                return read_checkpoint(store)
        derived = derive(store)
        held = held_slugs(store, damaged_records(store, derived.scan))
        return build_checkpoint(derived.successes, derived.rejects, live_claims(store, read_queue(store)[0]), held)
    if not views_current(store):
        consolidate(store)
    try:
        return read_json_views(store, "checkpoint", "usage")[0]  # the usage totals checked on the way
    except ViewDamagedError as exc:
        consolidate(store, verify=True)
        if repaired is not None:
            repaired.append(f"{exc.what}: rebuilt from the ledger")
        return read_checkpoint(store)
