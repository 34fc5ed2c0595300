"""The published snapshot: the manifest naming each view's immutable object, and reading views from it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

import polars as pl

from content_pipeline.errors import StoreError
from content_pipeline.ledger.jsonl import CHUNK_BYTES, Piece, decode_objects
from content_pipeline.ledger.records import SCHEMA, valid_record
from content_pipeline.ledger.scan import ledger_fingerprint
from content_pipeline.store import Store, layout
from content_pipeline.views.checkpoint import Checkpoint, parse_checkpoint

REPUBLISH = "run `content-pipeline consolidate` to publish the views again from the ledger"
# The columns of master the audit, sync and the run report read (the full record stays in its line).
MASTER_COLUMNS: dict[str, pl.DataType] = {
    k: SCHEMA[k] for k in ("id", "run_id", "slug", "status", "error", "reason", "retryable")
}


class ViewDigestError(StoreError):
    """A view object's bytes differ from the digest its manifest recorded: edited outside the pipeline."""


def load_manifest(store: Store) -> tuple[dict[str, Any] | None, str | None]:
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
    manifest, version = load_manifest(store)
    if manifest is None and version is not None:
        raise StoreError(f"{layout.MANIFEST} is damaged: {REPUBLISH}")
    return manifest


def views_snapshot(store: Store) -> dict[str, int] | None:
    """The ledger snapshot (segment -> size) the current views were built from, if any."""
    manifest = read_manifest(store)
    segments = manifest.get("segments") if manifest else None
    return None if segments is None else {key: size for key, size in segments}


def views_current(store: Store) -> bool:
    """True when the published views were built from the ledger as it stands now."""
    manifest, _ = load_manifest(store)
    return manifest is not None and manifest.get("fingerprint") == ledger_fingerprint(store)


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
    raise StoreError(f"master view {missing} is missing: {REPUBLISH}")


def read_view(store: Store, name: str) -> bytes | None:
    """The bytes of one current view (None before the first consolidation)."""
    return read_views(store, name)[name]


def _usage(raw: bytes | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {"records": 0, "cost_nano": 0, "by_run": {}}


def read_checkpoint(store: Store) -> Checkpoint:
    return parse_checkpoint(read_view(store, "checkpoint"))


def read_usage(store: Store) -> dict[str, Any]:
    return _usage(read_view(store, "usage"))


def read_checkpoint_and_usage(store: Store) -> tuple[Checkpoint, dict[str, Any]]:
    """The checkpoint and the usage totals of one snapshot (for status, which reads without the lease)."""
    views = read_views(store, "checkpoint", "usage")
    return parse_checkpoint(views["checkpoint"]), _usage(views["usage"])


def object_size(store: Store, key: str) -> int:
    return next((info.size for info in store.list(key) if info.key == key), 0)


def object_chunks(store: Store, key: str, size: int) -> Iterator[bytes]:
    """The object's first `size` bytes, CHUNK_BYTES at a time (fewer when it is shorter)."""
    pos = 0
    while pos < size and (data := store.get_range(key, pos, min(size, pos + CHUNK_BYTES))):
        yield data
        pos += len(data)


def stream_view(store: Store, name: str, out: BinaryIO) -> bool:
    """Write one current view to `out` in bounded chunks (a master file may be gigabytes); False when no
    views are published yet."""
    manifest = read_manifest(store) or {}
    key = manifest.get("files", {}).get(name)
    if key is None:
        return False
    size = manifest.get("sizes", {}).get(name)
    size = object_size(store, key) if size is None else int(size)
    written = 0
    for data in object_chunks(store, key, size):
        out.write(data)
        written += len(data)
    if written < size:
        raise StoreError(f"master view {name!r} ({key}) went away while it was read: run the command again")
    return True


def intact(store: Store, key: str, sha256: str | None) -> bool:
    """True when the object's bytes still hash to `sha256` (read in bounded chunks)."""
    size, read, digest = object_size(store, key), 0, hashlib.sha256()
    for data in object_chunks(store, key, size):
        digest.update(data)
        read += len(data)
    return sha256 is not None and read == size and digest.hexdigest() == sha256


class _Hasher:
    """Hashes the pieces a decode reads (the view's bytes, in the same pass)."""

    def __init__(self) -> None:
        self.digest, self.read = hashlib.sha256(), 0

    def __call__(self, piece: Piece) -> None:
        self.digest.update(piece.data)
        self.read += len(piece.data)

    def matches(self, size: int, sha256: str) -> bool:
        return self.read == size and self.digest.hexdigest() == sha256


def read_master(store: Store, name: str, *, verify: bool = False) -> pl.DataFrame:
    """A master view ("successes" or "rejects") as MASTER_COLUMNS, read in bounded chunks from one
    published snapshot. With `verify`, its bytes must still match the digest its manifest recorded."""
    return _view_columns(store, name, MASTER_COLUMNS, verify)


def read_sketches(store: Store) -> pl.DataFrame:
    """slug and near-copy sketch of every master success (for the near-copy index), read column-wise."""
    return _view_columns(store, "successes", {"slug": pl.String(), "sketch": pl.List(pl.Int64())}, False)


def _view_columns(store: Store, name: str, schema: dict[str, pl.DataType], verify: bool) -> pl.DataFrame:
    for _ in range(3):  # the object may be collected while it is read (a reader outside the lease): look again
        manifest = read_manifest(store) or {}
        key = manifest.get("files", {}).get(name)
        if key is None:
            return pl.DataFrame(schema=schema)
        recorded = manifest.get("sha256", {}).get(name)
        size = manifest.get("sizes", {}).get(name)
        size = object_size(store, key) if size is None else int(size)
        version = None if recorded is None else f"sha256:{recorded}"  # the object never changes under its name
        hashed = _Hasher()
        [decoded] = decode_objects(
            store, [(key, size, version)], schema, valid_record, observe=hashed if verify else None
        )
        end = decoded.end
        if end.complete + len(end.tail) < size:
            continue
        # hashed while it was decoded, or read again when its columns came from the cache
        if (
            verify
            and recorded is not None
            and not (hashed.matches(size, recorded) if hashed.read else intact(store, key, recorded))
        ):
            raise ViewDigestError(
                f"master {name} ({key}) differs from the digest its manifest recorded "
                f"(changed outside the pipeline): {REPUBLISH}"
            )
        if decoded.bad or end.tail:
            problem = decoded.bad[0] if decoded.bad else f"{key}: its last line is incomplete"
            raise StoreError(f"master {name} is damaged ({problem}): {REPUBLISH}")
        return decoded.frame.drop("line")
    raise StoreError(f"master view {name!r} is missing: {REPUBLISH}")
