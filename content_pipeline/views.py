"""Views derived from the ledger: master successes and rejects, indexes, usage, checkpoint. Nobody edits them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from content_pipeline import layout
from content_pipeline.batch import live_claims, read_queue
from content_pipeline.budget import NANO
from content_pipeline.errors import LeaseHeldError, StoreError
from content_pipeline.host import Holder
from content_pipeline.lease import Lease
from content_pipeline.ledger import SCHEMA, LedgerScan, ledger_fingerprint, scan_ledger
from content_pipeline.store import Store


def _jsonl(frame: pl.DataFrame) -> bytes:
    return "".join(line + "\n" for line in frame["line"]).encode()


def master_frames(ledger: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(successes, rejects): one per slug, the latest version; a reject never shadows a success."""
    order = ["slug", "finished_at", "id"]
    successes = ledger.filter(pl.col("status") == "success").sort(order).unique("slug", keep="last").sort("slug")
    rejects = (
        ledger.filter((pl.col("status") == "reject") & ~pl.col("slug").is_in(successes["slug"].implode()))
        .sort(order)
        .unique("slug", keep="last")
        .sort("slug")
    )
    return successes, rejects


def nano_sum(frame: pl.DataFrame) -> int:
    if frame.is_empty():
        return 0
    return int((frame["cost_usd"] * NANO).round().cast(pl.Int64).sum())


def usage_totals(ledger: pl.DataFrame) -> dict[str, Any]:
    """Spend and tokens in total and by run, summed in nano-dollars."""
    by_run: dict[str, Any] = {}
    for run_id in sorted(set(ledger["run_id"].to_list())) if ledger.height else []:
        part = ledger.filter(pl.col("run_id") == run_id)
        by_run[run_id] = {
            "records": part.height,
            "successes": part.filter(pl.col("status") == "success").height,
            "rejects": part.filter(pl.col("status") == "reject").height,
            "tokens_in": int(part["tokens_in"].sum()),
            "tokens_out": int(part["tokens_out"].sum()),
            "cost_nano": nano_sum(part),
            "budget_usd": float(part["run_budget_usd"].max()),
        }
    return {
        "records": ledger.height,
        "tokens_in": int(ledger["tokens_in"].sum()) if ledger.height else 0,
        "tokens_out": int(ledger["tokens_out"].sum()) if ledger.height else 0,
        "cost_nano": nano_sum(ledger),
        "cost_usd": nano_sum(ledger) / NANO,
        "by_run": by_run,
    }


def build_checkpoint(successes: pl.DataFrame, rejects: pl.DataFrame, queue: dict[str, Any]) -> dict[str, Any]:
    """done / rejected / queued, exactly as master says; queued excludes anything already decided."""
    done = dict(zip(successes["slug"].to_list(), successes["id"].to_list(), strict=True))
    rejected = {
        row["slug"]: {"id": row["id"], "reason": row["reason"], "retryable": bool(row["retryable"])}
        for row in rejects.select("slug", "id", "reason", "retryable").iter_rows(named=True)
    }
    queued = {
        slug: run for slug, run in sorted(live_claims(queue).items()) if slug not in done and slug not in rejected
    }
    return {"done": done, "rejected": rejected, "queued": queued}


def read_master(store: Store, key: str) -> pl.DataFrame:
    """A master file as rows (same columns as the ledger scan, with the line)."""
    data = store.get(key) or b""
    lines = [line for line in data.decode("utf-8").split("\n") if line.strip()]
    frame = pl.DataFrame({"line": lines}, schema={"line": pl.String})
    try:
        return frame.with_columns(rec=pl.col("line").str.json_decode(SCHEMA)).unnest("rec")
    except pl.exceptions.PolarsError:
        raise StoreError(
            f"{key} is damaged (a line is not a record): run `content-pipeline consolidate` to rebuild it from the ledger"
        ) from None


def read_checkpoint(store: Store) -> dict[str, Any]:
    raw = store.get(layout.CHECKPOINT)
    return json.loads(raw) if raw else {"done": {}, "rejected": {}, "queued": {}}


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode()


def _put_if_changed(store: Store, key: str, data: bytes) -> bool:
    if store.get(key) == data:
        return False
    store.put(key, data)
    return True


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


def _write_views(store: Store, scan: LedgerScan) -> Consolidation:
    start = time.perf_counter()
    successes, rejects = master_frames(scan.frame)
    queue, _ = read_queue(store)
    outputs = {
        layout.MASTER_SUCCESSES: _jsonl(successes),
        layout.MASTER_REJECTS: _jsonl(rejects),
        layout.PROCESSED_INDEX: "".join(s + "\n" for s in successes["slug"]).encode(),
        layout.REJECTED_INDEX: "".join(s + "\n" for s in rejects["slug"]).encode(),
        layout.USAGE: _dump(usage_totals(scan.frame)),
        layout.CHECKPOINT: _dump(build_checkpoint(successes, rejects, queue)),
    }
    result = Consolidation(scan.frame.height, successes.height, rejects.height)
    result.repaired, result.torn_tails, result.bad_lines = scan.repaired, scan.torn_tails, scan.bad_lines
    if store.read_only:
        result.changed = [key for key, data in outputs.items() if store.get(key) != data]
        return result
    # master first, the checkpoint (which readers trust for "done") last
    result.changed = [key for key, data in outputs.items() if _put_if_changed(store, key, data)]
    _put_if_changed(store, layout.VIEWS_STATE, _dump({"fingerprint": scan.fingerprint, "segments": scan.segments}))
    result.duration_s = time.perf_counter() - start
    if result.changed or result.repaired:
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


def consolidate(store: Store, *, wait_s: float = 60.0) -> Consolidation | None:
    """Rebuild every view from the ledger under the views lease; idempotent. With wait_s=0 a
    consolidation already running elsewhere makes this one a no-op (None)."""
    try:
        with views_lock(store, wait_s):
            return _write_views(store, scan_ledger(store, repair=not store.read_only))
    except LeaseHeldError:
        if wait_s == 0:
            return None
        raise


def views_snapshot(store: Store) -> dict[str, int] | None:
    """The ledger snapshot (segment -> size) the current views were built from, if any."""
    raw = store.get(layout.VIEWS_STATE)
    segments = json.loads(raw).get("segments") if raw else None
    return None if segments is None else {key: size for key, size in segments}


def views_current(store: Store) -> bool:
    raw = store.get(layout.VIEWS_STATE)
    return raw is not None and json.loads(raw).get("fingerprint") == ledger_fingerprint(store)


def ensure_views_current(store: Store) -> Consolidation | None:
    """Rebuild the views when the ledger changed since they were built (after a crash, say)."""
    if views_current(store):
        return None
    return consolidate(store)


def sync_checkpoint(store: Store) -> bool:
    """The checkpoint from master (and the live claims); True when it changed."""
    with views_lock(store):
        successes = read_master(store, layout.MASTER_SUCCESSES)
        rejects = read_master(store, layout.MASTER_REJECTS)
        queue, _ = read_queue(store)
        data = _dump(build_checkpoint(successes, rejects, queue))
        if store.read_only:
            return store.get(layout.CHECKPOINT) != data
        return _put_if_changed(store, layout.CHECKPOINT, data)


def current_checkpoint(store: Store) -> dict[str, Any]:
    """The checkpoint as the ledger stands now: rebuilt first when stale (in memory for read-only runs)."""
    if not views_current(store):
        if store.read_only:
            successes, rejects = master_frames(scan_ledger(store).frame)
            return build_checkpoint(successes, rejects, read_queue(store)[0])
        consolidate(store)
    return read_checkpoint(store)


class PeriodicConsolidator:
    """Runs a consolidation in the background every `every` successes; skips while one is running."""

    def __init__(self, store: Store, every: int) -> None:
        self.store, self.every = store, every
        self.runs = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self, successes: int) -> None:
        if self.every <= 0 or self.store.read_only or successes % self.every:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="periodic-consolidate", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if consolidate(self.store, wait_s=0) is not None:
            self.runs += 1

    def join(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
