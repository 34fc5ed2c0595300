"""Scans of the whole ledger: every record's columns in bounded memory, torn tails repaired, damage named."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import polars as pl

from content_pipeline.ledger.inflight import intent_objects
from content_pipeline.ledger.jsonl import BadLine, ObjectEnd, decode_objects, iter_frames, iter_pieces
from content_pipeline.ledger.records import SCHEMA, OutcomeRecord, valid_record
from content_pipeline.ledger.writer import writer_gone
from content_pipeline.store import ObjectInfo, Store, layout


@dataclass
class LedgerScan:
    """The ledger's columns: one row per complete record, with `seg` (index into `segments`) and `line`
    (its line number there), plus what could not be read."""

    frame: pl.DataFrame
    segments: list[tuple[str, int]] = field(default_factory=list)
    damaged: list[BadLine] = field(default_factory=list)  # lines that do not parse or fail their checksum
    incomplete: list[str] = field(default_factory=list)  # records that lack id, slug or status
    torn_tails: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    snapshot_lines: dict[int, int] | None = None  # seg -> lines inside the snapshot the scan was given
    lines: dict[int, int] = field(default_factory=dict)  # seg -> complete lines read

    def within(self, frame: pl.DataFrame | None = None) -> pl.DataFrame:
        """The records of `frame` (the scan's own when None) inside the snapshot the scan was given (what
        that consolidation saw); all without one, or when nothing was appended since (then no copy)."""
        frame = self.frame if frame is None else frame
        inside = self.snapshot_lines
        if inside is None or all(inside.get(seg, 0) >= n for seg, n in self.lines.items() if n):
            return frame
        limits = pl.DataFrame(
            {"seg": list(inside), "limit": list(inside.values())},
            schema={"seg": pl.UInt32, "limit": pl.UInt32},
        )
        return frame.join(limits, on="seg", how="inner").filter(pl.col("line") < pl.col("limit")).drop("limit")

    versions: list[str] = field(default_factory=list)  # each segment's version (ETag, or inode-mtime-size)
    intents: list[tuple[str, int, str]] = field(default_factory=list)  # the intents logs read with it

    @property
    def bad_lines(self) -> list[str]:
        """One line for each record the scan left out."""
        return [b.message(self.segments[b.seg][0]) for b in self.damaged] + self.incomplete

    def contents(self, store: Store) -> list[tuple[str, int, str]]:
        """Each segment read and the intents logs read with it: (key, size read, content digest)."""
        listed = [(key, size, v) for (key, size), v in zip(self.segments, self.versions, strict=True)]
        return [(key, size, store.digest(ObjectInfo(key, size, v))) for key, size, v in [*listed, *self.intents]]

    def fingerprint(self, store: Store) -> str:
        """Identifies the ledger's content: segment names, the sizes read, and their content digests (an edit
        that keeps the size included; a faithful copy of the store the same); and the intents logs read."""
        return fingerprint_of(self.contents(store))


def ledger_segments(store: Store) -> list[ObjectInfo]:
    """The ledger's segment objects, as listed now."""
    return [info for info in store.list(layout.LEDGER_PREFIX) if layout.is_segment(info.key)]


def fingerprint_of(segments: list[tuple[str, int, str]]) -> str:
    return hashlib.sha256(json.dumps(segments).encode()).hexdigest()[:32]


def ledger_contents(store: Store) -> list[tuple[str, int, str]]:
    """The ledger's segments and the intents logs as they stand: (key, size, content digest), each object's
    digest read once per version (Store.digest)."""
    return [(info.key, info.size, store.digest(info)) for info in [*ledger_segments(store), *intent_objects(store)]]


def ledger_fingerprint(store: Store) -> str:
    """Fingerprint of the ledger and the intents logs as they stand."""
    return fingerprint_of(ledger_contents(store))


Schema = dict[str, pl.DataType]


def _empty(schema: Schema = SCHEMA) -> pl.DataFrame:
    return pl.DataFrame(schema={**schema, "seg": pl.UInt32, "line": pl.UInt32})


def _whole(frame: pl.DataFrame, keys: list[str], missing: list[str]) -> pl.DataFrame:
    """The rows that carry id, slug and status; the others are described in `missing`."""
    lacking = pl.col("id").is_null() | pl.col("slug").is_null() | pl.col("status").is_null()
    bad = frame.filter(lacking)
    if bad.is_empty():
        return frame
    missing.extend(
        f"{keys[seg]}: line {line + 1} lacks id/slug/status" for seg, line in bad.select("seg", "line").iter_rows()
    )
    return frame.filter(~lacking)


def _read(
    store: Store,
    infos: list[ObjectInfo],
    consume: Callable[[pl.DataFrame], None],
    limits: dict[int, int] | None,
    cached: bool,
    missing: list[str],
    schema: Schema,
) -> tuple[list[ObjectEnd], list[BadLine]]:
    """Hand the `schema` columns of every segment's complete records to `consume`; how each segment ended
    and its damaged lines (the lines of segments written with checksums must match them)."""
    keys = [info.key for info in infos]
    columns = [*schema, "seg", "line"]
    signed = frozenset(seg for seg, key in enumerate(keys) if layout.is_signed(key))
    if cached:  # whole segments, from the column cache when this process decoded them at this version
        decoded = decode_objects(
            store, [(i.key, i.size, i.version) for i in infos], schema, valid_record, limits=limits, signed=signed
        )
        for seg, d in enumerate(decoded):
            if d.frame.height:
                consume(_whole(d.frame.with_columns(seg=pl.lit(seg, pl.UInt32)).select(columns), keys, missing))
        # numbered by this listing: a cached object may have had another place in an earlier one
        return [d.end for d in decoded], [replace(b, seg=seg) for seg, d in enumerate(decoded) for b in d.bad]
    found: dict[int, ObjectEnd] = {}
    damaged: list[BadLine] = []
    pieces = iter_pieces(store, [(info.key, info.size) for info in infos], found, limits)
    for frame in iter_frames(pieces, schema, keys, valid_record, damaged, signed=signed):
        if frame.height:
            consume(_whole(frame.select(columns), keys, missing))
    return [found.get(seg, ObjectEnd()) for seg in range(len(keys))], damaged


def _tail(store: Store, scan: LedgerScan, seg: int, end: ObjectEnd, repair: bool) -> None:
    """A segment's final line without its newline: moved to quarantine and cut off when `repair` and its
    writer is known dead (a complete record is never dropped); otherwise reported."""
    key = scan.segments[seg][0]
    if repair and not store.read_only and writer_gone(key):
        kept = layout.torn_tail(key, end.complete)
        store.put(kept, end.tail)
        store.truncate(key, end.complete)
        scan.segments[seg] = (key, end.complete)
        scan.versions[seg] = next((i.version for i in store.list(key) if i.key == key), "")
        scan.repaired.append(f"{key}: torn final line of {len(end.tail)} bytes moved to {kept}")
    else:
        scan.torn_tails.append(f"{key}: incomplete final line of {len(end.tail)} bytes (writer may be live)")


def torn_by_gone_writers(scan: LedgerScan) -> list[str]:
    """The scan's torn tails whose writer is known dead: those a repairing scan cuts off (the others may
    still be being written)."""
    return [line for line in scan.torn_tails if writer_gone(line.split(": ", 1)[0])]


def stream_ledger(
    store: Store,
    consume: Callable[[pl.DataFrame], None],
    *,
    repair: bool = False,
    snapshot: dict[str, int] | None = None,
    segments: list[ObjectInfo] | None = None,
    cached: bool = True,
    schema: Schema = SCHEMA,
) -> LedgerScan:
    """Hand the SCHEMA columns of every complete ledger record (with `seg` and `line`) to `consume`, a
    chunk or a segment at a time, reading in bounded ranges; what could not be read is in the returned
    scan (its frame left empty). A torn final line is skipped and, with `repair` and its writer known dead,
    moved to quarantine and cut off; a complete record is never dropped. With `snapshot` (segment ->
    size), the scan's `snapshot_lines` say which lines it held. `segments` is the listing to read (listed
    now when None). `cached`: a segment this process decoded before, at the same version, is not read
    again (its columns are kept in memory); otherwise nothing outlives the chunk being consumed. `schema`:
    the columns to decode (id, slug and status among them)."""
    infos = ledger_segments(store) if segments is None else segments
    limits = None
    if snapshot is not None:
        limits = {seg: snapshot[info.key] for seg, info in enumerate(infos) if info.key in snapshot}
    scan = LedgerScan(frame=_empty(schema), segments=[(info.key, info.size) for info in infos])
    scan.versions = [info.version for info in infos]
    ends, scan.damaged = _read(store, infos, consume, limits, cached, scan.incomplete, schema)
    for seg, end in enumerate(ends):
        scan.lines[seg] = end.lines
        if end.tail:
            _tail(store, scan, seg, end, repair)
    if limits is not None:
        scan.snapshot_lines = {seg: ends[seg].lines_at[limit] for seg, limit in limits.items()}
    return scan


def scan_ledger(store: Store, *, repair: bool = False, snapshot: dict[str, int] | None = None) -> LedgerScan:
    """`stream_ledger` gathered into one frame: every complete record's SCHEMA columns with `seg` and
    `line`. With `snapshot` (segment -> size), `within()` gives the records it held."""
    frames: list[pl.DataFrame] = []
    scan = stream_ledger(store, frames.append, repair=repair, snapshot=snapshot)
    if frames:
        scan.frame = pl.concat(frames, rechunk=False)
    return scan


def read_records(store: Store) -> list[OutcomeRecord]:
    """Every complete ledger record, parsed whole (for tools and tests; the views use `scan_ledger`)."""
    records = []
    for info in ledger_segments(store):
        for piece in iter_pieces(store, [(info.key, info.size)]):
            records.extend(OutcomeRecord.model_validate_json(line) for line in piece.data.splitlines() if line.strip())
    return records
