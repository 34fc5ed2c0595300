"""Views derived from the ledger: master successes and rejects, indexes, usage, checkpoint. Nobody edits them."""

from __future__ import annotations

import hashlib
import json
import secrets
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
from content_pipeline.errors import LeaseHeldError, StoreError, StoreIOError
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


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode()


_REPUBLISH = "run `content-pipeline consolidate` to publish the views again from the ledger"


def _load_manifest(store: Store) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest and its version; a damaged manifest reads as absent (its version kept for the swap)."""
    found = store.get_versioned(layout.MANIFEST)
    if found is None:
        return None, None
    try:
        manifest = json.loads(found[0])
        if not isinstance(manifest.get("files"), dict):
            raise ValueError
    except (ValueError, AttributeError):
        return None, found[1]
    return manifest, found[1]


def read_manifest(store: Store) -> dict[str, Any] | None:
    """The published views: which object holds each view, and the ledger snapshot they were built from."""
    manifest, version = _load_manifest(store)
    if manifest is None and version is not None:
        raise StoreError(f"{layout.MANIFEST} is damaged: {_REPUBLISH}")
    return manifest


def read_views(store: Store, *names: str) -> dict[str, bytes | None]:
    """The bytes of current views, all from one published snapshot (None before the first consolidation).
    Objects are immutable and one manifest names them all, so a reader never mixes two consolidations."""
    missing = ""
    for _ in range(3):  # an object may be collected between reading the manifest and reading it: look again
        manifest = read_manifest(store)
        files = manifest["files"] if manifest else {}
        found = {name: store.get(files[name]) if name in files else None for name in names}
        missing = next((f"{n!r} ({files[n]})" for n, data in found.items() if n in files and data is None), "")
        if not missing:
            return found
    raise StoreError(f"master view {missing} is missing: {_REPUBLISH}")


def read_view(store: Store, name: str) -> bytes | None:
    """The bytes of one current view (None before the first consolidation)."""
    return read_views(store, name)[name]


def read_master(store: Store, name: str) -> pl.DataFrame:
    """A master view ("successes" or "rejects") as rows (same columns as the ledger scan, with the line)."""
    data = read_view(store, name) or b""
    lines = [line for line in data.decode("utf-8").split("\n") if line.strip()]
    frame = pl.DataFrame({"line": lines}, schema={"line": pl.String})
    try:
        return frame.with_columns(rec=pl.col("line").str.json_decode(SCHEMA)).unnest("rec")
    except pl.exceptions.PolarsError:
        raise StoreError(f"master {name} is damaged (a line is not a record): {_REPUBLISH}") from None


def _checkpoint(raw: bytes | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {"done": {}, "rejected": {}, "queued": {}}


def _usage(raw: bytes | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {"records": 0, "cost_nano": 0, "by_run": {}}


def read_checkpoint(store: Store) -> dict[str, Any]:
    return _checkpoint(read_view(store, "checkpoint"))


def read_usage(store: Store) -> dict[str, Any]:
    return _usage(read_view(store, "usage"))


def read_checkpoint_and_usage(store: Store) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint and the usage totals of one snapshot (for status, which reads without the lease)."""
    views = read_views(store, "checkpoint", "usage")
    return _checkpoint(views["checkpoint"]), _usage(views["usage"])


def publish_views(store: Store, outputs: dict[str, bytes], state: dict[str, Any] | None = None) -> list[str]:
    """Publish views as one snapshot: write each changed view to a new immutable object, then swap the
    manifest by compare-and-swap. Views not in `outputs` keep their object; `state` (the ledger fingerprint
    and segments) is kept when None. A crash before the swap leaves the previous snapshot current; its
    leftovers are never named by a manifest and the next publication collects them. Returns the names
    of the views that changed (computed without writing on a read-only store)."""
    previous, version = _load_manifest(store)
    old_files: dict[str, str] = dict(previous["files"]) if previous else {}
    files = dict(old_files)
    for name, data in outputs.items():
        files[name] = layout.view_object(name, hashlib.sha256(data).hexdigest())
    changed = [name for name in outputs if files[name] != old_files.get(name)]
    if state is None:
        state = {k: (previous or {}).get(k) for k in ("fingerprint", "segments")}
    state = json.loads(json.dumps(state))  # as it reads back from the manifest (lists, not tuples)
    same_state = previous is not None and all(previous.get(k) == v for k, v in state.items())
    if store.read_only or (not changed and same_state):
        return changed
    for name in changed:
        store.put(files[name], outputs[name])
    manifest = {
        "snapshot": secrets.token_hex(8),
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **state,
        "files": files,
        "previous_files": old_files,
    }
    swapped = (
        store.put_if_match(layout.MANIFEST, _dump(manifest), version)
        if version is not None
        else store.put_if_absent(layout.MANIFEST, _dump(manifest))
    )
    if not swapped:
        raise StoreIOError(
            f"{layout.MANIFEST} changed while these views were published (the views lease was lost); "
            "nothing is lost: consolidate again"
        )
    if previous is None:
        for key in layout.LEGACY_VIEWS:
            if store.get(key) is not None:
                store.delete(key)
    keep = set(files.values()) | set(old_files.values())  # a reader of the previous snapshot may still be reading
    for info in store.list(layout.VIEW_OBJECTS):
        if info.key not in keep:
            store.delete(info.key)
    return changed


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
        "successes": _jsonl(successes),
        "rejects": _jsonl(rejects),
        "processed": "".join(s + "\n" for s in successes["slug"]).encode(),
        "rejected": "".join(s + "\n" for s in rejects["slug"]).encode(),
        "usage": _dump(usage_totals(scan.frame)),
        "checkpoint": _dump(build_checkpoint(successes, rejects, queue)),
    }
    result = Consolidation(scan.frame.height, successes.height, rejects.height)
    result.repaired, result.torn_tails, result.bad_lines = scan.repaired, scan.torn_tails, scan.bad_lines
    # every view of this consolidation becomes current at once, with the ledger snapshot it was built from
    result.changed = publish_views(store, outputs, {"fingerprint": scan.fingerprint, "segments": scan.segments})
    if store.read_only:
        return result
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
    manifest = read_manifest(store)
    segments = manifest.get("segments") if manifest else None
    return None if segments is None else {key: size for key, size in segments}


def views_current(store: Store) -> bool:
    """True when the published views were built from the ledger as it stands now."""
    manifest, _ = _load_manifest(store)
    return manifest is not None and manifest.get("fingerprint") == ledger_fingerprint(store)


def ensure_views_current(store: Store) -> Consolidation | None:
    """Rebuild the views when the ledger changed since they were built (after a crash, say)."""
    if views_current(store):
        return None
    return consolidate(store)


def sync_checkpoint(store: Store) -> bool:
    """The checkpoint from master (and the live claims); True when it changed."""
    with views_lock(store):
        successes = read_master(store, "successes")
        rejects = read_master(store, "rejects")
        queue, _ = read_queue(store)
        return bool(publish_views(store, {"checkpoint": _dump(build_checkpoint(successes, rejects, queue))}))


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
