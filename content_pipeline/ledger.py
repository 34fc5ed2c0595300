"""The ledger: immutable outcome records, appended durably the moment QA decides; the one source of truth."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, Field

from content_pipeline import layout
from content_pipeline.host import pid_alive, this_host
from content_pipeline.scan import ObjectEnd, decode_objects, iter_frames, iter_pieces
from content_pipeline.store import ObjectInfo, Store


def record_id(run_id: str, slug: str, attempt: int) -> str:
    """Deterministic id of an outcome: the same run, slug and attempt always give the same id."""
    return hashlib.sha256(f"{run_id}\x1f{slug}\x1f{attempt}".encode()).hexdigest()[:32]


class Call(BaseModel):
    """One paid LLM call that went into an outcome."""

    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    outcome: str


class OutcomeRecord(BaseModel):
    """One QA decision about one item in one run."""

    id: str
    run_id: str
    slug: str
    status: Literal["success", "reject"]
    content: dict[str, Any] | None = None
    error: str | None = None
    reason: str | None = None
    retryable: bool = False
    model: str
    prompt_template: str
    prompt_version: str
    input_hash: str
    tokens_in: int = Field(ge=0)
    tokens_out: int = Field(ge=0)
    cost_usd: float = Field(ge=0)
    attempt: int = Field(ge=1)
    escalated: bool = False
    calls: list[Call] = Field(default_factory=list)
    run_budget_usd: float
    offline: bool = False
    source_fields: list[str] = Field(default_factory=list)
    sketch: list[int] = Field(default_factory=list, description="near-copy fingerprint of the content")
    started_at: str
    finished_at: str

    def line(self) -> bytes:
        return (self.model_dump_json(exclude_none=False) + "\n").encode()


@dataclass
class _Pending:
    line: bytes
    done: bool = False
    error: BaseException | None = None


class LedgerWriter:
    """Appends records to this process's own segment of a run; `append` returns once its record is durable.
    Group commit: while one thread writes and fsyncs, records from other threads queue, and the next
    writer takes them all in one write and one fsync (one object on S3)."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.key = f"{layout.ledger_dir(run_id)}{this_host()}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self._appender = store.appender(self.key)
        self.records = 0
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False

    def append(self, record: OutcomeRecord) -> None:
        mine = _Pending(record.line())
        batch: list[_Pending] = []
        with self._cond:
            self._queue.append(mine)
            while self._writing and not mine.done:
                self._cond.wait()
            if not mine.done:  # nobody is writing: write everything queued, ours included
                self._writing = True
                batch, self._queue = self._queue, []
        if batch:
            error: BaseException | None = None
            try:
                self._appender.append(b"".join(p.line for p in batch))
            except BaseException as exc:  # every record of the group failed: each caller hears it
                error = exc
            with self._cond:
                for pending in batch:
                    pending.done, pending.error = True, error
                self.records += 0 if error else len(batch)
                self._writing = False
                self._cond.notify_all()
        if mine.error is not None:
            raise mine.error

    def close(self) -> None:
        self._appender.close()


def _segment_writer_gone(key: str) -> bool:
    """True when the segment's writer (host-pid in its name) is known dead."""
    name = key.rsplit("/", 1)[-1]
    parts = name.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    host, pid = parts[0], int(parts[1])
    return host == this_host() and not pid_alive(pid)


# The columns the views and the audit need; a scan decodes only these (the full record stays in its line).
SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "run_id": pl.String(),
    "slug": pl.String(),
    "status": pl.String(),
    "error": pl.String(),
    "reason": pl.String(),
    "retryable": pl.Boolean(),
    "tokens_in": pl.Int64(),
    "tokens_out": pl.Int64(),
    "cost_usd": pl.Float64(),
    "run_budget_usd": pl.Float64(),
    "finished_at": pl.String(),
}


@dataclass
class LedgerScan:
    """The ledger's columns: one row per complete record, with `seg` (index into `segments`) and `line`
    (its line number there), plus what could not be read."""

    frame: pl.DataFrame
    segments: list[tuple[str, int]] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
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

    @property
    def fingerprint(self) -> str:
        """Identifies the ledger's content: segment names and the sizes that were read."""
        return _fingerprint(self.segments)


def ledger_segments(store: Store) -> list[ObjectInfo]:
    """The ledger's segment objects, as listed now."""
    return [info for info in store.list(layout.LEDGER_PREFIX) if info.key.endswith(".jsonl")]


def _fingerprint(segments: list[tuple[str, int]]) -> str:
    return hashlib.sha256(json.dumps(segments).encode()).hexdigest()[:32]


def ledger_fingerprint(store: Store) -> str:
    """Fingerprint of the ledger as it stands, without reading it."""
    return _fingerprint([(info.key, info.size) for info in ledger_segments(store)])


def valid_record(line: str) -> bool:
    """True when the line is a whole outcome record."""
    try:
        OutcomeRecord.model_validate_json(line)
    except ValueError:
        return False
    return True


# the columns of a scanned row: the decoded fields, then where the row is (segment index and line number)
COLUMNS = [*SCHEMA, "seg", "line"]


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={**SCHEMA, "seg": pl.UInt32, "line": pl.UInt32})


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


def stream_ledger(
    store: Store,
    consume: Callable[[pl.DataFrame], None],
    *,
    repair: bool = False,
    snapshot: dict[str, int] | None = None,
    segments: list[ObjectInfo] | None = None,
    cached: bool = True,
) -> LedgerScan:
    """Hand the SCHEMA columns of every complete ledger record (with `seg` and `line`) to `consume`, a
    chunk or a segment at a time, reading in bounded ranges; what could not be read is in the returned
    scan (its frame left empty). A torn final line is skipped and, with `repair` and its writer known dead,
    moved to quarantine and cut off; a complete record is never dropped. With `snapshot` (segment ->
    size), the scan's `snapshot_lines` say which lines it held. `segments` is the listing to read (listed
    now when None). `cached`: a segment this process decoded before, at the same version, is not read
    again (its columns are kept in memory); otherwise nothing outlives the chunk being consumed."""
    infos = ledger_segments(store) if segments is None else segments
    keys = [info.key for info in infos]
    limits = None
    if snapshot is not None:
        limits = {seg: snapshot[key] for seg, key in enumerate(keys) if key in snapshot}
    scan = LedgerScan(frame=_empty(), segments=[(info.key, info.size) for info in infos])
    missing: list[str] = []
    if cached:
        objects = [(info.key, info.size, info.version) for info in infos]
        decoded = decode_objects(store, objects, SCHEMA, valid_record, limits=limits)
        ends, bad = [d.end for d in decoded], [d.bad for d in decoded]
        for seg, d in enumerate(decoded):
            if d.frame.height:
                consume(_whole(d.frame.with_columns(seg=pl.lit(seg, pl.UInt32)).select(COLUMNS), keys, missing))
    else:
        found: dict[int, ObjectEnd] = {}
        damaged: list[tuple[int, str]] = []
        pieces = iter_pieces(store, scan.segments, found, limits)
        for frame in iter_frames(pieces, SCHEMA, keys, valid_record, damaged):
            if frame.height:
                consume(_whole(frame.select(COLUMNS), keys, missing))
        ends = [found.get(seg, ObjectEnd()) for seg in range(len(keys))]
        bad = [[m for s, m in damaged if s == seg] for seg in range(len(keys))]
    for seg, (key, end) in enumerate(zip(keys, ends, strict=True)):
        scan.lines[seg] = end.lines
        scan.bad_lines.extend(bad[seg])
        if not end.tail:
            continue
        if repair and not store.read_only and _segment_writer_gone(key):
            qkey = f"{layout.QUARANTINE_PREFIX}{key}.torn-at-{end.complete}"
            store.put(qkey, end.tail)
            store.truncate(key, end.complete)
            scan.segments[seg] = (key, end.complete)
            scan.repaired.append(f"{key}: torn final line of {len(end.tail)} bytes moved to {qkey}")
        else:
            scan.torn_tails.append(f"{key}: incomplete final line of {len(end.tail)} bytes (writer may be live)")
    if limits is not None:
        scan.snapshot_lines = {seg: ends[seg].lines_at[limit] for seg, limit in limits.items()}
    scan.bad_lines.extend(missing)
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
