"""Swapping views in: each changed view to a new immutable object, then the manifest swapped by CAS."""

from __future__ import annotations

import bisect
import hashlib
import json
import queue
import secrets
import threading
from array import array
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import polars as pl

from content_pipeline.errors import StoreIOError
from content_pipeline.ledger.jsonl import iter_pieces
from content_pipeline.store import Store, layout
from content_pipeline.store.base import ObjectWriter
from content_pipeline.views.kept import protected_objects
from content_pipeline.views.snapshot import dump_json, intact, load_manifest, manifest_cell


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


View = bytes | LedgerLines


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


def _pick_lines(sink: _Sink, store: Store, segment: tuple[str, int], wanted: list[tuple[int, list[int]]]) -> None:
    """Hand each view its lines of one segment (`wanted`: view index, its line numbers), a chunk at a time."""
    for piece in iter_pieces(store, [segment]):
        split: list[bytes] | None = None
        for i, lines in wanted:
            lo = bisect.bisect_left(lines, piece.first)
            hi = bisect.bisect_left(lines, piece.first + piece.lines, lo)
            if lo == hi:
                continue
            split = split or piece.data.split(b"\n")
            sink.put(i, b"\n".join([split[line - piece.first] for line in lines[lo:hi]]) + b"\n")


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
            _pick_lines(
                sink, store, segments[seg], [(i, chosen[seg]) for i, chosen in enumerate(picks) if seg in chosen]
            )
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


def _write(store: Store, outputs: dict[str, View], files: dict[str, str], changed: list[str]) -> dict[str, Any]:
    """Write the changed views to their new objects; (sha256, size) of each one written."""
    written: dict[str, Any] = {}
    copies = {n: body for n in changed if isinstance(body := outputs[n], LedgerLines)}
    if copies:
        written.update(_copy_lines(store, copies, files))
    for name in changed:
        body = outputs[name]
        if not isinstance(body, LedgerLines):
            store.put(files[name], body)
            written[name] = (hashlib.sha256(body).hexdigest(), len(body))
    return written


def _swap(store: Store, manifest: dict[str, Any], version: int) -> None:
    """Make `manifest` current, only if the one read before (`version`) is still current."""
    if not manifest_cell(store).swap(dump_json(manifest), version):
        raise StoreIOError(
            f"the manifest ({layout.MANIFEST}/) changed while these views were published (the views lease was "
            "lost); nothing is lost: consolidate again"
        )


def _collect(store: Store, files: dict[str, str], old_files: dict[str, str], first: bool) -> None:
    """Remove view objects no manifest names any more (and, on the first publication, the legacy views)."""
    if first:
        for key in layout.LEGACY_VIEWS:
            if store.get(key) is not None:
                store.delete(key)
    keep = set(files.values()) | set(old_files.values())  # a reader of the previous snapshot may still be reading
    unnamed = [info.key for info in store.list(layout.VIEW_OBJECTS) if info.key not in keep]
    if unnamed:
        kept = protected_objects(store)  # (read only when there is something to collect)
        if doomed := [key for key in unnamed if key not in kept]:
            store.delete_many(doomed)


def swap_views(
    store: Store, outputs: dict[str, View], state: dict[str, Any] | None = None, *, verify: bool = False
) -> list[str]:
    """Publish views as one snapshot: write each changed view to a new immutable object, then swap the
    manifest by compare-and-swap. A view is given as its bytes or as the ledger lines it holds (copied in
    one streaming pass). Views not in `outputs` keep their object; `state` (the ledger fingerprint and
    segments) is kept when None. A crash before the swap leaves the previous snapshot current; its
    leftovers are never named by a manifest and the next publication collects them. Returns the names
    of the views that changed (computed without writing on a read-only store). With `verify`, a view
    whose object no longer matches its recorded digest (changed by hand) is written again."""
    previous, version, _ = load_manifest(store)
    old_files: dict[str, str] = dict(previous["files"]) if previous else {}
    files = dict(old_files)
    for name, body in outputs.items():
        digest = body.digest() if isinstance(body, LedgerLines) else hashlib.sha256(body).hexdigest()
        files[name] = layout.view_object(name, digest)
    changed = [name for name in outputs if files[name] != old_files.get(name)]
    if verify and previous is not None:
        recorded = previous.get("sha256", {})
        changed += [n for n in outputs if n not in changed and not intact(store, files[n], recorded.get(n))]
    if state is None:
        state = {k: (previous or {}).get(k) for k in ("fingerprint", "segments", "contents")}
    state = json.loads(json.dumps(state))  # as it reads back from the manifest (lists, not tuples)
    same_state = previous is not None and all(previous.get(k) == v for k, v in state.items())
    if store.read_only or (not changed and same_state):
        return changed
    sha256 = {n: d for n, d in (previous or {}).get("sha256", {}).items() if files.get(n) == old_files.get(n)}
    sizes = {n: z for n, z in (previous or {}).get("sizes", {}).items() if files.get(n) == old_files.get(n)}
    for name, (digest, size) in _write(store, outputs, files, changed).items():
        sha256[name], sizes[name] = digest, size
    manifest = {
        "snapshot": secrets.token_hex(8),
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **state,
        "files": files,
        "sha256": sha256,
        "sizes": sizes,
        "previous_files": old_files,
    }
    _swap(store, manifest, version)
    _collect(store, files, old_files, first=previous is None)
    return changed
