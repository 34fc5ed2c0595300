"""The ledger: immutable outcome records, appended durably the moment QA decides; the one source of truth."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, Field

from content_pipeline import layout
from content_pipeline.host import pid_alive, this_host
from content_pipeline.store import Store


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


# The columns every view needs; the full record travels along as its original line.
SCHEMA = pl.Struct(
    {
        "id": pl.String,
        "run_id": pl.String,
        "slug": pl.String,
        "status": pl.String,
        "error": pl.String,
        "reason": pl.String,
        "retryable": pl.Boolean,
        "model": pl.String,
        "tokens_in": pl.Int64,
        "tokens_out": pl.Int64,
        "cost_usd": pl.Float64,
        "escalated": pl.Boolean,
        "run_budget_usd": pl.Float64,
        "finished_at": pl.String,
    }
)


@dataclass
class LedgerScan:
    """The parsed ledger: one row per complete record, plus what could not be read."""

    frame: pl.DataFrame
    segments: list[tuple[str, int]] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    torn_tails: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def within(self, snapshot: dict[str, int] | None) -> pl.DataFrame:
        """The records inside a snapshot (segment -> size), i.e. what a consolidation saw."""
        if snapshot is None:
            return self.frame
        limits = pl.DataFrame(
            {"segment": list(snapshot), "limit": list(snapshot.values())},
            schema={"segment": pl.String, "limit": pl.Int64},
        )
        return self.frame.join(limits, on="segment", how="inner").filter(pl.col("end") <= pl.col("limit")).drop("limit")

    @property
    def fingerprint(self) -> str:
        """Identifies the ledger's content: segment names and the sizes that were read."""
        return hashlib.sha256(json.dumps(self.segments).encode()).hexdigest()[:32]


def ledger_fingerprint(store: Store) -> str:
    """Fingerprint of the ledger as it stands, without reading it."""
    segments = [(info.key, info.size) for info in store.list(layout.LEDGER_PREFIX) if info.key.endswith(".jsonl")]
    return hashlib.sha256(json.dumps(segments).encode()).hexdigest()[:32]


def _valid(line: str) -> bool:
    try:
        OutcomeRecord.model_validate_json(line)
    except ValueError:
        return False
    return True


def scan_ledger(store: Store, *, repair: bool = False) -> LedgerScan:
    """Read every complete ledger record. A torn final line is skipped and, with `repair` and its
    writer known dead, moved to quarantine and cut off; a complete record is never dropped.
    Each row keeps its segment and the byte offset where its line ends (see LedgerScan.within)."""
    lines: list[str] = []
    where: list[tuple[str, int]] = []
    scan = LedgerScan(frame=pl.DataFrame())
    for info in store.list(layout.LEDGER_PREFIX):
        if not info.key.endswith(".jsonl"):
            continue
        data = store.get(info.key) or b""
        complete = data.rfind(b"\n") + 1
        size = len(data)
        if complete < len(data):
            tail = data[complete:]
            if repair and not store.read_only and _segment_writer_gone(info.key):
                qkey = f"{layout.QUARANTINE_PREFIX}{info.key}.torn-at-{complete}"
                store.put(qkey, tail)
                store.truncate(info.key, complete)
                size = complete
                scan.repaired.append(f"{info.key}: torn final line of {len(tail)} bytes moved to {qkey}")
            else:
                scan.torn_tails.append(f"{info.key}: incomplete final line of {len(tail)} bytes (writer may be live)")
        scan.segments.append((info.key, size))
        end = 0
        for number, raw in enumerate(data[:complete].split(b"\n")[:-1], start=1):
            end += len(raw) + 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                scan.bad_lines.append(f"{info.key}: line {number} is not UTF-8")
                continue
            if text.strip():
                lines.append(text)
                where.append((info.key, end))
    frame = pl.DataFrame(
        {"line": lines, "segment": [w[0] for w in where], "end": [w[1] for w in where]},
        schema={"line": pl.String, "segment": pl.String, "end": pl.Int64},
    )
    try:
        scan.frame = frame.with_columns(rec=pl.col("line").str.json_decode(SCHEMA)).unnest("rec")
    except pl.exceptions.PolarsError:  # some line is not a record: find them one by one, keep the rest
        valid = pl.Series([_valid(line) for line in lines], dtype=pl.Boolean)
        scan.bad_lines.extend(f"ledger line does not parse: {line[:80]!r}" for line in frame.filter(~valid)["line"])
        frame = frame.filter(valid)
        scan.frame = frame.with_columns(rec=pl.col("line").str.json_decode(SCHEMA)).unnest("rec")
    missing = scan.frame.filter(pl.col("id").is_null() | pl.col("slug").is_null() | pl.col("status").is_null())
    if missing.height:
        scan.bad_lines.extend(f"ledger line lacks id/slug/status: {line[:80]!r}" for line in missing["line"])
        scan.frame = scan.frame.filter(pl.col("id").is_not_null() & pl.col("slug").is_not_null())
    return scan
