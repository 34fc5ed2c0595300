"""The published snapshot: the manifest naming each view's immutable object, and reading views from it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import polars as pl

from content_pipeline.errors import StoreError
from content_pipeline.ledger.jsonl import CHUNK_BYTES, Piece, decode_objects
from content_pipeline.ledger.records import SCHEMA, valid_record
from content_pipeline.ledger.scan import fingerprint_of, ledger_contents, ledger_fingerprint
from content_pipeline.store import Store, layout
from content_pipeline.store.cell import Cell
from content_pipeline.views.checkpoint import Checkpoint, parse_checkpoint

REPUBLISH = "run `content-pipeline consolidate` to publish the views again from the ledger"
# The columns of master the audit, sync and the run report read (the full record stays in its line).
MASTER_COLUMNS: dict[str, pl.DataType] = {
    k: SCHEMA[k] for k in ("id", "run_id", "slug", "status", "error", "reason", "retryable")
}


class ViewDamagedError(StoreError):
    """A view object (or the manifest) does not read back as what the pipeline wrote: rebuilt by consolidate.
    `what` names the object and the damage; the message adds the remedy."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: {REPUBLISH}")
        self.what = what


class ViewDigestError(ViewDamagedError):
    """A view object's bytes differ from the digest its manifest recorded: edited outside the pipeline."""


def dump_json(obj: Any) -> bytes:
    return (json.dumps(obj, sort_keys=True) + "\n").encode()  # no indent: json's C encoder (10x faster)


def manifest_cell(store: Store) -> Cell:
    """The manifest's cell (versions under `master/manifest/`)."""
    return Cell(store, layout.MANIFEST, legacy=layout.LEGACY_MANIFEST)


def load_manifest(store: Store) -> tuple[dict[str, Any] | None, int, bool]:
    """The manifest, its version, and whether what is stored there is damaged (then it reads as absent and
    its version is kept for the swap that replaces it)."""
    raw, version = manifest_cell(store).read()
    if raw is None:
        return None, version, False
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest.get("files"), dict):
            raise ValueError
    except (ValueError, AttributeError):
        return None, version, True
    return manifest, version, False


def read_manifest(store: Store) -> dict[str, Any] | None:
    """The published views: which object holds each view, and the ledger snapshot they were built from."""
    manifest, version, damaged = load_manifest(store)
    if damaged:
        where = manifest_cell(store).where(version)
        raise ViewDamagedError(f"the manifest {where} is damaged (not a manifest the pipeline wrote)")
    return manifest


def views_snapshot(store: Store) -> dict[str, int] | None:
    """The ledger snapshot (segment -> size) the current views were built from, if any."""
    manifest = read_manifest(store)
    segments = manifest.get("segments") if manifest else None
    return None if segments is None else {key: size for key, size in segments}


def views_current(store: Store) -> bool:
    """True when the published views were built from the ledger as it stands now."""
    manifest = load_manifest(store)[0]
    return manifest is not None and manifest.get("fingerprint") == ledger_fingerprint(store)


def why_not_current(store: Store) -> str | None:
    """Why the published views are not current, from what in the ledger changed since they were built (None
    when they are current)."""
    manifest = load_manifest(store)[0]
    if manifest is None:
        return "no views yet: the ledger was never consolidated"
    now = ledger_contents(store)
    if manifest.get("fingerprint") == fingerprint_of(now):
        return None
    built = manifest.get("contents")
    if not isinstance(built, list):
        return "the views predate content fingerprints (a consolidation records them)"
    then = {key: (size, digest) for key, size, digest in built if key.startswith(layout.LEDGER_PREFIX)}
    seen = {key: (size, digest) for key, size, digest in now if key.startswith(layout.LEDGER_PREFIX)}
    added = sum(1 for k in seen if k not in then) + sum(1 for k in seen if k in then and seen[k][0] > then[k][0])
    edited = [k for k in seen if k in then and seen[k][0] == then[k][0] and seen[k][1] != then[k][1]]
    gone = [k for k in then if k not in seen or seen[k][0] < then[k][0]]
    parts = []
    if added:
        parts.append(f"records appended to {added} ledger segment(s) since they were built")
    if edited:
        parts.append(f"{len(edited)} segment(s) changed in place at the same size (edited or damaged): {edited[0]}")
    if gone:
        parts.append(f"{len(gone)} segment(s) they were built from are gone or shorter: {gone[0]}")
    return "; ".join(parts) or "the intents logs changed since they were built (calls begun or settled)"


def _read_views(store: Store, names: Iterable[str]) -> tuple[dict[str, Any], dict[str, bytes | None]]:
    """The manifest and the bytes of the views `names` it names, all from that one snapshot."""
    missing = ""
    for _ in range(3):  # an object may be collected between reading the manifest and reading it: look again
        manifest = read_manifest(store) or {}
        files = manifest.get("files", {})
        found = {name: store.get(files[name]) if name in files else None for name in names}
        missing = next((f"{n!r} ({files[n]})" for n, data in found.items() if n in files and data is None), "")
        if not missing:
            return manifest, found
    raise StoreError(f"master view {missing} is missing: {REPUBLISH}")


def read_views(store: Store, *names: str) -> dict[str, bytes | None]:
    """The bytes of current views, all from one published snapshot (None before the first consolidation).
    Objects are immutable and one manifest names them all, so a reader never mixes two consolidations."""
    return _read_views(store, names)[1]


def read_view(store: Store, name: str) -> bytes | None:
    """The bytes of one current view (None before the first consolidation)."""
    return read_views(store, name)[name]


def _usage(raw: bytes | None) -> dict[str, Any]:
    usage = json.loads(raw) if raw else {"records": 0, "cost_nano": 0, "by_run": {}}
    if not isinstance(usage, dict) or not isinstance(usage.get("cost_nano"), int):
        raise ValueError("not the usage totals the pipeline writes")
    return usage


def _superseded(raw: bytes | None) -> dict[str, Any]:
    found = json.loads(raw) if raw else {"rejected": {}, "earlier": {}}
    if not isinstance(found, dict) or not all(isinstance(found.get(k), dict) for k in ("rejected", "earlier")):
        raise ValueError("not the superseded input hashes the pipeline writes")
    return found


_PARSERS: dict[str, Callable[[bytes | None], Any]] = {
    "checkpoint": parse_checkpoint,
    "usage": _usage,
    "superseded": _superseded,
}


def _parsed(manifest: dict[str, Any], name: str, raw: bytes | None) -> Any:
    """A JSON view checked against its recorded digest and parsed, or a ViewDamagedError naming its object
    and what is wrong with it."""
    key, recorded = manifest.get("files", {}).get(name), manifest.get("sha256", {}).get(name)
    if raw is not None and recorded is not None and hashlib.sha256(raw).hexdigest() != recorded:
        raise ViewDamagedError(f"{name} view ({key}) differs from the digest its manifest recorded")
    try:
        return _PARSERS[name](raw)
    except ValueError as exc:
        raise ViewDamagedError(f"{name} view ({key}) is damaged ({str(exc)[:120]})") from None


def read_json_views(store: Store, *names: str) -> list[Any]:
    """The checkpoint and/or usage totals, parsed and checked, all from one snapshot (for status, which
    reads without the lease)."""
    manifest, found = _read_views(store, names)
    return [_parsed(manifest, name, found[name]) for name in names]


def read_checkpoint(store: Store) -> Checkpoint:
    return read_json_views(store, "checkpoint")[0]


def read_usage(store: Store) -> dict[str, Any]:
    return read_json_views(store, "usage")[0]


def read_inputs(store: Store) -> tuple[pl.DataFrame, dict[str, Any]]:
    """What master's successes were generated from (slug, input_hash), and the superseded view (the input
    hash of each changed item whose new version was rejected for good, and each changed item's earlier
    successes by input hash): what inventory compares an item with."""
    hashes = _view_columns(store, "successes", {"slug": pl.String(), "input_hash": pl.String()}, False)
    return hashes, read_json_views(store, "superseded")[0]


def read_checkpoint_and_usage(store: Store) -> tuple[Checkpoint, dict[str, Any]]:
    """The checkpoint and the usage totals of one snapshot (for status, which reads without the lease)."""
    checkpoint, usage = read_json_views(store, "checkpoint", "usage")
    return checkpoint, usage


def views_cut(store: Store) -> list[str]:
    """The published views whose object is missing or not the size its manifest recorded (one listing, no
    reading: for status)."""
    manifest = read_manifest(store) or {}
    listed = {info.key: info.size for info in store.list(layout.VIEW_OBJECTS)}
    sizes = manifest.get("sizes", {})
    return sorted(
        name
        for name, key in manifest.get("files", {}).items()
        if key not in listed or (name in sizes and listed[key] != int(sizes[name]))
    )


def damaged_views(store: Store, names: Iterable[str]) -> dict[str, str]:
    """name -> one line, for each of the published views `names` whose object no longer hashes to what its
    manifest recorded (damaged, cut or changed outside the pipeline)."""
    manifest = read_manifest(store) or {}
    files, recorded = manifest.get("files", {}), manifest.get("sha256", {})
    return {
        name: f"{name} view ({files[name]}) differs from the digest its manifest recorded (damaged or changed "
        f"outside the pipeline): {REPUBLISH}"
        for name in names
        if name in files and not intact(store, files[name], recorded.get(name))
    }


def object_size(store: Store, key: str) -> int:
    return next((info.size for info in store.list(key) if info.key == key), 0)


def object_chunks(store: Store, key: str, size: int) -> Iterator[bytes]:
    """The object's first `size` bytes, CHUNK_BYTES at a time (fewer when it is shorter)."""
    pos = 0
    while pos < size and (data := store.get_range(key, pos, min(size, pos + CHUNK_BYTES))):
        yield data
        pos += len(data)


def has_view(store: Store, name: str) -> bool:
    """True when the current views include `name`."""
    return name in (read_manifest(store) or {}).get("files", {})


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


def object_digest(store: Store, key: str, size: int) -> tuple[str, int]:
    """The sha256 of the object's first `size` bytes and how many were read (bounded chunks)."""
    digest, read = hashlib.sha256(), 0
    for data in object_chunks(store, key, size):
        digest.update(data)
        read += len(data)
    return digest.hexdigest(), read


def intact(store: Store, key: str, sha256: str | None) -> bool:
    """True when the object's bytes still hash to `sha256` (read in bounded chunks)."""
    size = object_size(store, key)
    return sha256 is not None and object_digest(store, key, size) == (sha256, size)


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


def read_post_templates(store: Store) -> pl.DataFrame:
    """slug, prompt_template and prompt_version of every master success: which template wrote each post."""
    columns = {"slug": pl.String(), "prompt_template": pl.String(), "prompt_version": pl.String()}
    return _view_columns(store, "successes", columns, False)


def read_sketches(store: Store) -> pl.DataFrame:
    """slug and near-copy sketch of every master success (for the near-copy index), read column-wise."""
    return _view_columns(store, "successes", {"slug": pl.String(), "sketch": pl.List(pl.Int64())}, False)


CONTENT = pl.Struct(
    {
        "headline": pl.String(),
        "description": pl.String(),
        "highlights": pl.List(pl.String()),
        "seo_description": pl.String(),
    }
)


def read_contents(store: Store) -> pl.DataFrame:
    """slug, content and finished_at of every master success (what publishing sends), read column-wise, and
    `fallback`: whether a call of it went to FALLBACK_MODEL's provider (the primary was down)."""
    calls = pl.List(pl.Struct({"provider": pl.String()}))
    schema = {"slug": pl.String(), "content": CONTENT, "finished_at": pl.String(), "calls": calls}
    frame = _view_columns(store, "successes", schema, False)
    providers = pl.col("calls").list.eval(pl.element().struct.field("provider").is_not_null())
    return frame.with_columns(fallback=providers.list.any().fill_null(False)).drop("calls")


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
            listed = [info.size for info in store.list(key) if info.key == key]
            if listed:  # there, but shorter than the manifest says: cut, not collected
                raise ViewDamagedError(
                    f"master {name} ({key}) is shorter than its manifest says ({listed[0]} of {size} bytes)"
                )
            continue
        # hashed while it was decoded, or read again when its columns came from the cache
        if (
            verify
            and recorded is not None
            and not (hashed.matches(size, recorded) if hashed.read else intact(store, key, recorded))
        ):
            raise ViewDigestError(
                f"master {name} ({key}) differs from the digest its manifest recorded (changed outside the pipeline)"
            )
        if decoded.bad or end.tail:
            problem = decoded.bad[0].message(key) if decoded.bad else f"{key}: its last line is incomplete"
            raise ViewDamagedError(f"master {name} is damaged ({problem})")
        return decoded.frame.drop("line")
    raise StoreError(f"master view {name!r} is missing: {REPUBLISH}")
