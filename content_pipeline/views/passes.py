"""A pass over the whole ledger: usage summed and master's columns spread by slug over partitions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from content_pipeline.ledger.inflight import IntentScan, read_intents, recorded_among, unsettled
from content_pipeline.ledger.quarantine import damaged_records
from content_pipeline.ledger.records import SCHEMA
from content_pipeline.ledger.scan import LedgerScan, ledger_segments, stream_ledger
from content_pipeline.ledger.spill import Partitions, compact, partitions_for
from content_pipeline.store import Store
from content_pipeline.views.booked import book_damaged
from content_pipeline.views.master import MASTER_FROM, UsageSums, earlier, master_frames, once_per_id, superseded

# the ledger columns a pass keeps, by slug partition: what master is chosen from, what the audit checks, and
# what takes a record written twice back out of the usage sums
LEDGER_FROM = [*MASTER_FROM, "error", "cost_usd", "input_hash", "run_id", "tokens_in", "tokens_out"]
Listing = tuple[tuple[str, int, str], ...]


@dataclass
class LedgerPass:
    """One streaming read of the whole ledger: what the scan found, the LEDGER_FROM columns of every
    record spread by slug over partitions, and the usage sums; `listing` is the ledger it read."""

    scan: LedgerScan
    parts: Partitions
    usage: UsageSums
    listing: Listing


class _KeptPass:
    """The latest spilled pass of this process, kept on local disk (not in memory) so the next pass over
    the same ledger (go-live's audit after its consolidation) works the partitions without reading the
    ledger again. One at a time: a pass in use elsewhere is not shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tuple[str, LedgerPass] | None = None

    def take(self, url: str, listing: Listing) -> LedgerPass | None:
        with self._lock:
            if self._kept is None or self._kept[0] != url or self._kept[1].listing != listing:
                return None
            found, self._kept = self._kept[1], None
            return found

    def keep(self, url: str, passed: LedgerPass) -> None:
        with self._lock:
            old, self._kept = self._kept, (url, passed)
        if old is not None and old[1] is not passed:
            old[1].parts.close()

    def clear(self) -> None:
        with self._lock:
            old, self._kept = self._kept, None
        if old is not None:
            old[1].parts.close()


KEPT_PASS = _KeptPass()


def _reused(found: LedgerPass, repair: bool, snapshot: dict[str, int] | None) -> LedgerPass | None:
    """A kept pass as a pass of this call: None where this call must read the ledger itself (a torn tail
    it may now repair, or a snapshot other than the ledger as listed)."""
    listed = {key: size for key, size, _ in found.listing}
    if (repair and found.scan.torn_tails) or (snapshot is not None and snapshot != listed):
        return None
    lines = None if snapshot is None else dict(found.scan.lines)
    scan = replace(found.scan, repaired=[], snapshot_lines=lines)
    return LedgerPass(scan, found.parts, found.usage, found.listing)


@contextmanager
def ledger_partitions(
    store: Store, *, repair: bool = False, snapshot: dict[str, int] | None = None
) -> Iterator[LedgerPass]:
    """Read the whole ledger once, streaming: usage summed and the LEDGER_FROM columns of every record
    spread by slug over partitions, to be worked one at a time (local temporary files when the ledger is
    bigger than one partition; in memory, with the segments' columns cached, when it is not). A spilled
    pass is kept for the next call over the same ledger (see `_KeptPass`)."""
    infos = ledger_segments(store)
    listing = tuple((info.key, info.size, info.version) for info in infos)
    kept = KEPT_PASS.take(store.url, listing)
    if kept is not None and (passed := _reused(kept, repair, snapshot)) is not None:
        try:
            yield passed
        finally:
            KEPT_PASS.keep(store.url, kept)
        return
    if kept is not None:
        kept.parts.close()
    usage = UsageSums()
    schema = pl.Schema({c: pl.UInt32() if c in ("seg", "line") else SCHEMA[c] for c in LEDGER_FROM})
    count = partitions_for(sum(info.size for info in infos))
    parts = Partitions(count, schema=schema)
    try:

        def consume(frame: pl.DataFrame) -> None:
            usage.add(frame)
            parts.add(frame.select(LEDGER_FROM))

        scan = stream_ledger(store, consume, repair=repair, snapshot=snapshot, segments=infos, cached=count == 1)
        parts.seal()
        passed = LedgerPass(scan, parts, usage, listing)
        yield passed
    except BaseException:
        parts.close()
        raise
    if count > 1 and not scan.repaired:
        KEPT_PASS.keep(store.url, passed)
    else:
        parts.close()


@dataclass
class Derived:
    """What the ledger derives: master successes (id, slug, seg, line) and rejects (also reason and
    retryable), each in slug order; the usage totals; what the scan found (its frame left empty); the input
    hash of each changed item whose new version was rejected for good, and the earlier successes of changed
    items (`superseded`: {"rejected": slug -> hash, "earlier": slug -> hash -> [segment, record id]})."""

    successes: pl.DataFrame
    rejects: pl.DataFrame
    usage: dict[str, Any]
    scan: LedgerScan
    partitions: int = 1
    intents: IntentScan = field(default_factory=IntentScan)
    superseded: dict[str, Any] = field(default_factory=dict)


def derive(store: Store, *, repair: bool = False) -> Derived:
    """Master and usage from the whole ledger in one streaming read. A big ledger's records are spread by
    slug over partitions and master is chosen one partition at a time, so memory follows the size of
    master (the catalogue), not the number of records in the ledger. The usage totals also name the
    intents no outcome settled (`unsettled`, by writer), read from the intents logs first."""
    intents = read_intents(store)
    wanted = list(intents.record_ids)
    recorded: set[str] = set()
    chosen: list[tuple[pl.DataFrame, pl.DataFrame]] = []
    changed: dict[str, str] = {}
    versions: dict[str, dict[str, list[str]]] = {}
    extras: list[pl.DataFrame] = []
    with ledger_partitions(store, repair=repair) as passed:
        for whole in passed.parts:
            part, extra = once_per_id(whole)  # a record written twice counts once
            extras += [extra] if extra.height else []
            recorded.update(recorded_among(part, wanted))
            changed.update(superseded(part).iter_rows())
            for slug, digest, seg, record_id in earlier(part).iter_rows():
                versions.setdefault(slug, {})[digest] = [passed.scan.segments[seg][0], record_id]
            succ, rej = master_frames(part)
            chosen.append(
                (compact(succ.select("id", "slug", "seg", "line")), compact(rej.drop("status", "finished_at")))
            )
    successes = pl.concat([s for s, _ in chosen]).sort("slug")
    rejects = pl.concat([r for _, r in chosen]).sort("slug")
    counted = passed.usage.less(pl.concat(extras)) if extras else passed.usage
    damaged = damaged_records(store, passed.scan) if passed.scan.damaged else []
    booked = book_damaged(store, damaged, passed.usage.most_nano)
    usage = {**counted.plus(booked).totals(), "unsettled": unsettled(intents, recorded)}
    scan = replace(passed.scan, intents=intents.listing)
    kept = {"rejected": dict(sorted(changed.items())), "earlier": dict(sorted(versions.items()))}
    return Derived(successes, rejects, usage, scan, passed.parts.count, intents, kept)
