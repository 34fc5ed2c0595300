"""Views derived from the ledger: master successes and rejects, indexes, usage, checkpoint. Nobody edits them."""

from __future__ import annotations

import bisect
import hashlib
import json
import queue
import secrets
import threading
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, BinaryIO

import polars as pl

from content_pipeline import layout
from content_pipeline.batch import live_claims, read_queue
from content_pipeline.budget import NANO
from content_pipeline.errors import LeaseHeldError, StoreError, StoreIOError
from content_pipeline.host import Holder
from content_pipeline.lease import Lease
from content_pipeline.ledger import SCHEMA, LedgerScan, ledger_fingerprint, ledger_segments, stream_ledger, valid_record
from content_pipeline.scan import CHUNK_BYTES, Piece, decode_objects, iter_pieces
from content_pipeline.spill import Partitions, compact, partitions_for
from content_pipeline.store import Store
from content_pipeline.store.base import ObjectWriter


def master_frames(ledger: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(successes, rejects): one per slug, the latest version; a reject never shadows a success. They
    keep the columns views are built from (id, slug, status, reason, retryable, and seg/line if given)."""
    order = ["slug", "finished_at", "id"]
    keep = ["id", "slug", "status", "finished_at", "reason", "retryable", "seg", "line"]
    ledger = ledger.select(c for c in keep if c in ledger.columns)
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


class UsageSums:
    """Spend and tokens in total and by run, summed a frame at a time: each record's cost is rounded to
    nano-dollars, then summed (the same totals however the ledger is cut into frames)."""

    _FOLD = 64  # partial sums kept before they are folded into one

    def __init__(self) -> None:
        self._partials: list[pl.DataFrame] = []

    def add(self, ledger: pl.DataFrame) -> None:
        nano = (pl.col("cost_usd") * NANO).round().cast(pl.Int64)
        self._partials.append(
            ledger.group_by("run_id").agg(
                records=pl.len().cast(pl.Int64),
                successes=(pl.col("status") == "success").sum().cast(pl.Int64),
                rejects=(pl.col("status") == "reject").sum().cast(pl.Int64),
                tokens_in=pl.col("tokens_in").sum(),
                tokens_out=pl.col("tokens_out").sum(),
                cost_nano=nano.sum(),
                budget_usd=pl.col("run_budget_usd").max().cast(pl.Float64),
            )
        )
        if len(self._partials) >= self._FOLD:
            self._partials = [self.by_run()]

    def by_run(self) -> pl.DataFrame:
        """One row per run: records, successes, rejects, tokens_in, tokens_out, cost_nano, budget_usd."""
        if not self._partials:
            return pl.DataFrame(
                schema={"run_id": pl.String, **dict.fromkeys(["records", "successes", "rejects"], pl.Int64)}
                | {"tokens_in": pl.Int64, "tokens_out": pl.Int64, "cost_nano": pl.Int64, "budget_usd": pl.Float64}
            )
        sums = [pl.col(c).sum() for c in ("records", "successes", "rejects", "tokens_in", "tokens_out", "cost_nano")]
        return pl.concat(self._partials).group_by("run_id").agg(*sums, pl.col("budget_usd").max()).sort("run_id")

    def totals(self) -> dict[str, Any]:
        runs = self.by_run()
        by_run = {row.pop("run_id"): row for row in runs.to_dicts()}
        cost = int(runs["cost_nano"].sum())
        return {
            "records": int(runs["records"].sum()),
            "tokens_in": int(runs["tokens_in"].sum()),
            "tokens_out": int(runs["tokens_out"].sum()),
            "cost_nano": cost,
            "cost_usd": cost / NANO,
            "by_run": by_run,
        }


def _json_string(column: str) -> pl.Expr:
    """Each value as a JSON literal (escaped as JSON requires)."""
    return pl.struct(pl.col(column).alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")


_MEMBERS_BATCH = 100_000  # rows made into JSON text at a time: the text of a batch, not of master, in flight


def _json_members(frame: pl.DataFrame, value: pl.Expr) -> list[bytes]:
    """`"slug":<value>` for every row in slug order, joined by commas (a JSON object's inside), as pieces
    of a batch of rows each (joined once, by the caller)."""
    frame = frame.sort("slug")
    pieces = []
    for start in range(0, frame.height, _MEMBERS_BATCH):
        batch = frame.slice(start, _MEMBERS_BATCH)
        members = batch.select(pl.concat_str(_json_string("slug"), pl.lit(":"), value).str.join(","))
        pieces.append((b"," if start else b"") + str(members.item()).encode())
    return pieces


def _decided(successes: pl.DataFrame, rejects: pl.DataFrame) -> tuple[list[bytes], list[bytes]]:
    """The checkpoint's text before and after its queued object (done and rejected, from master), in pieces."""
    done = _json_members(successes, _json_string("id"))
    flags = pl.struct("id", "reason", pl.col("retryable").fill_null(False))
    rejected = _json_members(rejects, flags.struct.json_encode())
    return [b'{"done":{', *done, b'},"queued":'], [b',"rejected":{', *rejected, b"}}\n"]


def checkpoint_bytes(successes: pl.DataFrame, rejects: pl.DataFrame, queue: dict[str, Any]) -> bytes:
    """done / rejected / queued, exactly as master says; queued excludes anything already decided.
    Written column-wise (a million entries in a fraction of a second), keys in slug order."""
    claims = live_claims(queue)
    decided = pl.concat([successes.select("slug"), rejects.select("slug")])["slug"]
    taken = set(decided.filter(decided.is_in(list(claims))).to_list()) if claims else set()
    queued = {slug: run for slug, run in sorted(claims.items()) if slug not in taken}
    head, tail = _decided(successes, rejects)
    return b"".join([*head, json.dumps(queued, separators=(",", ":")).encode(), *tail])


def _starts_with(raw: memoryview, pieces: list[bytes], at: int) -> int | None:
    """Where `pieces`, laid end to end from `at`, end in `raw`; None when the bytes there differ."""
    for piece in pieces:
        if raw[at : at + len(piece)] != piece:
            return None
        at += len(piece)
    return at


def checkpoint_queued(raw: bytes, successes: pl.DataFrame, rejects: pl.DataFrame) -> dict[str, Any] | None:
    """The checkpoint's queued entries when `raw` holds exactly master's done and rejected entries as
    `checkpoint_bytes` writes them (compared as bytes, without a dict of a million entries); else None."""
    head, tail = _decided(successes, rejects)
    view = memoryview(raw)
    start = _starts_with(view, head, 0)
    size = sum(len(p) for p in tail)
    if start is None or len(raw) - size < start or _starts_with(view, tail, len(raw) - size) != len(raw):
        return None
    try:
        queued = json.loads(raw[start : len(raw) - size])
    except ValueError:
        return None
    return queued if isinstance(queued, dict) else None


def build_checkpoint(successes: pl.DataFrame, rejects: pl.DataFrame, queue: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint as a dict (what `checkpoint_bytes` writes)."""
    return json.loads(checkpoint_bytes(successes, rejects, queue))


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, sort_keys=True) + "\n").encode()  # no indent: json's C encoder (10x faster)


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


def stream_view(store: Store, name: str, out: BinaryIO) -> bool:
    """Write one current view to `out` in bounded chunks (a master file may be gigabytes); False when no
    views are published yet."""
    manifest = read_manifest(store) or {}
    key = manifest.get("files", {}).get(name)
    if key is None:
        return False
    size = manifest.get("sizes", {}).get(name)
    size = _object_size(store, key) if size is None else int(size)
    written = 0
    for data in _chunks(store, key, size):
        out.write(data)
        written += len(data)
    if written < size:
        raise StoreError(f"master view {name!r} ({key}) went away while it was read: run the command again")
    return True


class ViewDigestError(StoreError):
    """A view object's bytes differ from the digest its manifest recorded: edited outside the pipeline."""


def _object_size(store: Store, key: str) -> int:
    return next((info.size for info in store.list(key) if info.key == key), 0)


def _chunks(store: Store, key: str, size: int) -> Iterator[bytes]:
    """The object's first `size` bytes, CHUNK_BYTES at a time (fewer when it is shorter)."""
    pos = 0
    while pos < size and (data := store.get_range(key, pos, min(size, pos + CHUNK_BYTES))):
        yield data
        pos += len(data)


# The columns of master the audit, sync and the run report read (the full record stays in its line).
MASTER_COLUMNS: dict[str, pl.DataType] = {
    k: SCHEMA[k] for k in ("id", "run_id", "slug", "status", "error", "reason", "retryable")
}


def read_master(store: Store, name: str, *, verify: bool = False) -> pl.DataFrame:
    """A master view ("successes" or "rejects") as MASTER_COLUMNS, read in bounded chunks from one
    published snapshot. With `verify`, its bytes must still match the digest its manifest recorded."""
    return _view_columns(store, name, MASTER_COLUMNS, verify)


def read_sketches(store: Store) -> pl.DataFrame:
    """slug and near-copy sketch of every master success (for the near-copy index), read column-wise."""
    return _view_columns(store, "successes", {"slug": pl.String(), "sketch": pl.List(pl.Int64())}, False)


class _Hasher:
    """Hashes the pieces a decode reads (the view's bytes, in the same pass)."""

    def __init__(self) -> None:
        self.digest, self.read = hashlib.sha256(), 0

    def __call__(self, piece: Piece) -> None:
        self.digest.update(piece.data)
        self.read += len(piece.data)

    def matches(self, size: int, sha256: str) -> bool:
        return self.read == size and self.digest.hexdigest() == sha256


def _view_columns(store: Store, name: str, schema: dict[str, pl.DataType], verify: bool) -> pl.DataFrame:
    for _ in range(3):  # the object may be collected while it is read (a reader outside the lease): look again
        manifest = read_manifest(store) or {}
        key = manifest.get("files", {}).get(name)
        if key is None:
            return pl.DataFrame(schema=schema)
        recorded = manifest.get("sha256", {}).get(name)
        size = manifest.get("sizes", {}).get(name)
        size = _object_size(store, key) if size is None else int(size)
        version = None if recorded is None else f"sha256:{recorded}"  # the object never changes under its name
        hashed = _Hasher()
        observe = hashed if verify else None
        [decoded] = decode_objects(store, [(key, size, version)], schema, valid_record, observe=observe)
        end = decoded.end
        if end.complete + len(end.tail) < size:
            continue
        # hashed while it was decoded, or read again when its columns came from the cache
        checked = not verify or recorded is None
        if not checked and not (hashed.matches(size, recorded) if hashed.read else _intact(store, key, recorded)):
            raise ViewDigestError(
                f"master {name} ({key}) differs from the digest its manifest recorded "
                f"(changed outside the pipeline): {_REPUBLISH}"
            )
        if decoded.bad or end.tail:
            problem = decoded.bad[0] if decoded.bad else f"{key}: its last line is incomplete"
            raise StoreError(f"master {name} is damaged ({problem}): {_REPUBLISH}")
        return decoded.frame.drop("line")
    raise StoreError(f"master view {name!r} is missing: {_REPUBLISH}")


def parse_checkpoint(raw: bytes | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {"done": {}, "rejected": {}, "queued": {}}


def _usage(raw: bytes | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {"records": 0, "cost_nano": 0, "by_run": {}}


def read_checkpoint(store: Store) -> dict[str, Any]:
    return parse_checkpoint(read_view(store, "checkpoint"))


def read_usage(store: Store) -> dict[str, Any]:
    return _usage(read_view(store, "usage"))


def read_checkpoint_and_usage(store: Store) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint and the usage totals of one snapshot (for status, which reads without the lease)."""
    views = read_views(store, "checkpoint", "usage")
    return parse_checkpoint(views["checkpoint"]), _usage(views["usage"])


@dataclass
class LedgerLines:
    """A view made of ledger lines: the `rows` (seg, line) of `segments` it holds, written in ledger order."""

    rows: pl.DataFrame
    segments: list[tuple[str, int]]

    @cached_property
    def by_segment(self) -> dict[int, list[int]]:
        """The line numbers it holds in each segment, in order."""
        return dict(self.rows.group_by("seg").agg(pl.col("line").sort()).iter_rows())

    def digest(self) -> str:
        """Names the view by what it holds: a ledger line never changes, so the same rows are the same bytes."""
        digest = hashlib.sha256(b"ledger-lines\0")
        for seg, lines in sorted(self.by_segment.items()):
            digest.update(self.segments[seg][0].encode() + b"\0" + array("I", lines).tobytes())
        return digest.hexdigest()


class _Sink:
    """Writes (and hashes) chunks on a thread of its own, a few chunks behind the reader, so the disk or
    network write of a view overlaps the reading and splitting of the next ledger chunk."""

    def __init__(self, writers: list[ObjectWriter]) -> None:
        self.writers = writers
        self.digests = [hashlib.sha256() for _ in writers]
        self.sizes = [0] * len(writers)
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._drain, name="view-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is not None:
                continue
            i, data = item
            try:
                self.writers[i].write(data)
                self.digests[i].update(data)
                self.sizes[i] += len(data)
            except BaseException as exc:  # reported to the reader at the next put or at close
                self.error = exc

    def put(self, i: int, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put((i, data))

    def close(self) -> None:
        """Wait for every chunk to be written; raise what the writing thread met."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def _copy_lines(store: Store, views: dict[str, LedgerLines], keys: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Write the views' ledger lines to their objects in one pass over the ledger, a chunk at a time;
    (sha256, size) of each object written."""
    names = list(views)
    segments = views[names[0]].segments
    picks = [views[n].by_segment for n in names]
    writers: list[ObjectWriter] = []
    sink: _Sink | None = None
    try:
        writers = [store.writer(keys[n]) for n in names]
        sink = _Sink(writers)
        for seg in sorted(set().union(*picks)):
            wanted = [(i, chosen[seg]) for i, chosen in enumerate(picks) if seg in chosen]
            for piece in iter_pieces(store, [segments[seg]]):
                split: list[bytes] | None = None
                for i, lines in wanted:
                    lo = bisect.bisect_left(lines, piece.first)
                    hi = bisect.bisect_left(lines, piece.first + piece.lines, lo)
                    if lo == hi:
                        continue
                    split = split or piece.data.split(b"\n")
                    first = piece.first
                    sink.put(i, b"\n".join([split[line - first] for line in lines[lo:hi]]) + b"\n")
        sink.close()
        for writer in writers:
            writer.commit()
    except BaseException:
        if sink is not None:
            with suppress(BaseException):
                sink.close()
        for writer in writers:
            writer.abort()
        raise
    return {n: (sink.digests[i].hexdigest(), sink.sizes[i]) for i, n in enumerate(names)}


def _intact(store: Store, key: str, sha256: str | None) -> bool:
    """True when the object's bytes still hash to `sha256` (read in bounded chunks)."""
    size, read, digest = _object_size(store, key), 0, hashlib.sha256()
    for data in _chunks(store, key, size):
        digest.update(data)
        read += len(data)
    return sha256 is not None and read == size and digest.hexdigest() == sha256


def publish_views(
    store: Store, outputs: dict[str, bytes | LedgerLines], state: dict[str, Any] | None = None, *, verify: bool = False
) -> list[str]:
    """Publish views as one snapshot: write each changed view to a new immutable object, then swap the
    manifest by compare-and-swap. A view is given as its bytes or as the ledger lines it holds (copied in
    one streaming pass). Views not in `outputs` keep their object; `state` (the ledger fingerprint and
    segments) is kept when None. A crash before the swap leaves the previous snapshot current; its
    leftovers are never named by a manifest and the next publication collects them. Returns the names
    of the views that changed (computed without writing on a read-only store). With `verify`, a view
    whose object no longer matches its recorded digest (changed by hand) is written again."""
    previous, version = _load_manifest(store)
    old_files: dict[str, str] = dict(previous["files"]) if previous else {}
    files = dict(old_files)
    for name, body in outputs.items():
        digest = body.digest() if isinstance(body, LedgerLines) else hashlib.sha256(body).hexdigest()
        files[name] = layout.view_object(name, digest)
    changed = [name for name in outputs if files[name] != old_files.get(name)]
    if verify and previous is not None:
        recorded = previous.get("sha256", {})
        changed += [n for n in outputs if n not in changed and not _intact(store, files[n], recorded.get(n))]
    if state is None:
        state = {k: (previous or {}).get(k) for k in ("fingerprint", "segments")}
    state = json.loads(json.dumps(state))  # as it reads back from the manifest (lists, not tuples)
    same_state = previous is not None and all(previous.get(k) == v for k, v in state.items())
    if store.read_only or (not changed and same_state):
        return changed
    sha256 = {n: d for n, d in (previous or {}).get("sha256", {}).items() if files.get(n) == old_files.get(n)}
    sizes = {n: z for n, z in (previous or {}).get("sizes", {}).items() if files.get(n) == old_files.get(n)}
    copies = {n: body for n in changed if isinstance(body := outputs[n], LedgerLines)}
    if copies:
        for name, (digest, size) in _copy_lines(store, copies, files).items():
            sha256[name], sizes[name] = digest, size
    for name in changed:
        body = outputs[name]
        if not isinstance(body, LedgerLines):
            store.put(files[name], body)
            sha256[name], sizes[name] = hashlib.sha256(body).hexdigest(), len(body)
    manifest = {
        "snapshot": secrets.token_hex(8),
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **state,
        "files": files,
        "sha256": sha256,
        "sizes": sizes,
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


def _slugs(frame: pl.DataFrame) -> bytes:
    """The slug index: one slug per line, sorted."""
    if frame.is_empty():
        return b""
    return (str(frame.select(pl.col("slug").sort().str.join("\n")).item()) + "\n").encode()


# the ledger columns master is chosen from, and where each record's line is
MASTER_FROM = ["id", "slug", "status", "finished_at", "reason", "retryable", "seg", "line"]


@dataclass
class Derived:
    """What the ledger derives: master successes (id, slug, seg, line) and rejects (also reason and
    retryable), each in slug order; the usage totals; what the scan found (its frame left empty)."""

    successes: pl.DataFrame
    rejects: pl.DataFrame
    usage: dict[str, Any]
    scan: LedgerScan
    partitions: int = 1


# the ledger columns a pass keeps, by slug partition: what master is chosen from, and what the audit checks
LEDGER_FROM = [*MASTER_FROM, "error", "cost_usd"]


@dataclass
class LedgerPass:
    """One streaming read of the whole ledger: what the scan found, the LEDGER_FROM columns of every
    record spread by slug over partitions, and the usage sums; `listing` is the ledger it read."""

    scan: LedgerScan
    parts: Partitions
    usage: UsageSums
    listing: tuple[tuple[str, int, str], ...]


class _KeptPass:
    """The latest spilled pass of this process, kept on local disk (not in memory) so the next pass over
    the same ledger (go-live's audit after its consolidation) works the partitions without reading the
    ledger again. One at a time: a pass in use elsewhere is not shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tuple[str, LedgerPass] | None = None

    def take(self, url: str, listing: tuple[tuple[str, int, str], ...]) -> LedgerPass | None:
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


def derive(store: Store, *, repair: bool = False) -> Derived:
    """Master and usage from the whole ledger in one streaming read. A big ledger's records are spread by
    slug over partitions and master is chosen one partition at a time, so memory follows the size of
    master (the catalogue), not the number of records in the ledger."""
    chosen: list[tuple[pl.DataFrame, pl.DataFrame]] = []
    with ledger_partitions(store, repair=repair) as passed:
        for part in passed.parts:
            succ, rej = master_frames(part)
            chosen.append(
                (compact(succ.select("id", "slug", "seg", "line")), compact(rej.drop("status", "finished_at")))
            )
    successes = pl.concat([s for s, _ in chosen]).sort("slug")
    rejects = pl.concat([r for _, r in chosen]).sort("slug")
    return Derived(successes, rejects, passed.usage.totals(), passed.scan, passed.parts.count)


def _write_views(store: Store, derived: Derived, verify: bool = False) -> Consolidation:
    start = time.perf_counter()
    successes, rejects, scan = derived.successes, derived.rejects, derived.scan
    queue, _ = read_queue(store)
    outputs: dict[str, bytes | LedgerLines] = {
        "successes": LedgerLines(successes.select("seg", "line"), scan.segments),
        "rejects": LedgerLines(rejects.select("seg", "line"), scan.segments),
        "processed": _slugs(successes),
        "rejected": _slugs(rejects),
        "usage": _dump(derived.usage),
        "checkpoint": checkpoint_bytes(successes, rejects, queue),
    }
    result = Consolidation(derived.usage["records"], successes.height, rejects.height)
    result.repaired, result.torn_tails, result.bad_lines = scan.repaired, scan.torn_tails, scan.bad_lines
    # every view of this consolidation becomes current at once, with the ledger snapshot it was built from
    state = {"fingerprint": scan.fingerprint, "segments": scan.segments}
    result.changed = publish_views(store, outputs, state, verify=verify)
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
        return bool(publish_views(store, {"checkpoint": checkpoint_bytes(successes, rejects, queue)}))


def current_checkpoint(store: Store) -> dict[str, Any]:
    """The checkpoint as the ledger stands now: rebuilt first when stale (in memory for read-only runs)."""
    if not views_current(store):
        if store.read_only:
            derived = derive(store)
            return build_checkpoint(derived.successes, derived.rejects, read_queue(store)[0])
        consolidate(store)
    return read_checkpoint(store)


class PeriodicConsolidator:
    """Runs a consolidation in the background every `every` successes; skips while one is running, and
    while the last one's share of the time since it started would exceed `share` (a consolidation of a
    million-record master takes seconds: it must not crowd the generation it runs beside)."""

    def __init__(self, store: Store, every: int, share: float = 0.1) -> None:
        self.store, self.every, self.share = store, every, share
        self.runs = self.skipped = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next_at = 0.0  # monotonic time before which no new consolidation starts

    def __call__(self, successes: int) -> None:
        if self.every <= 0 or self.store.read_only or successes % self.every:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if time.monotonic() < self._next_at:
                self.skipped += 1
                return
            self._thread = threading.Thread(target=self._run, name="periodic-consolidate", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        try:
            if consolidate(self.store, wait_s=0) is not None:
                self.runs += 1
        finally:
            took = time.monotonic() - start
            with self._lock:
                self._next_at = start + took / self.share

    def join(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
