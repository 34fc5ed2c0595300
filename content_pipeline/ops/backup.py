"""Backups: the ledger, the view snapshots and what a restore needs, copied to another store (a folder or
an S3 prefix) incrementally, each copy checked by its sha256, and each backup recorded in both stores."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from content_pipeline.errors import BadInputError, StoreError
from content_pipeline.store import ObjectInfo, Store, layout
from content_pipeline.views.snapshot import dump_json, object_chunks, object_digest

# What a backup holds: everything but the live state of running work (claims, leases, health probes).
BACKED_UP = (
    layout.LEDGER_PREFIX,
    layout.QUARANTINE_PREFIX,
    layout.INTENTS_PREFIX,
    layout.MASTER_PREFIX,
    layout.RUNS_PREFIX,
    layout.BATCHES_PREFIX,
    layout.LAST_GO_LIVE,
    layout.TEMPLATES_PREFIX,
    layout.REPORTS_PREFIX,
)


@dataclass
class Copied:
    """What one copy between stores did: objects copied (and their bytes), left as they were, and those
    that failed their check or could not be copied."""

    copied: int = 0
    bytes: int = 0
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> size, sha256, source version


def listing(store: Store, prefixes: tuple[str, ...] = BACKED_UP) -> list[ObjectInfo]:
    return [info for prefix in prefixes for info in store.list(prefix) if info.key.startswith(prefix)]


def copy_object(src: Store, dst: Store, info: ObjectInfo) -> str:
    """Copy one object in bounded chunks and read the copy back: its sha256 (StoreError when the copy
    does not hash as the original did)."""
    digest = hashlib.sha256()
    writer = dst.writer(info.key)
    try:
        for data in object_chunks(src, info.key, info.size):
            digest.update(data)
            writer.write(data)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    copied, size = object_digest(dst, info.key, info.size)
    if copied != digest.hexdigest() or size != info.size:
        raise StoreError(
            f"{info.key}: the copy in {dst.url} does not hash as the original ({size} of {info.size} bytes)"
        )
    return copied


def _recorded(store: Store) -> list[dict[str, Any]]:
    """The backups recorded in `store`, oldest first (an unreadable record is left out)."""
    out = []
    for info in store.list(layout.BACKUPS_PREFIX):
        try:
            entry = json.loads(store.get(info.key) or b"")
            if isinstance(entry, dict) and "id" in entry:
                out.append(entry)
        except ValueError:
            continue
    return sorted(out, key=lambda e: str(e.get("at", "")))


def backups(store: Store) -> list[dict[str, Any]]:
    """The backups recorded in `store` (the source's: where each went; a target's: what it holds)."""
    return [{k: v for k, v in entry.items() if k != "objects"} for entry in _recorded(store)]


def backup(src: Store, dst: Store) -> dict[str, Any]:
    """Copy to `dst` every object it lacks or that changed since the last backup to it (ledger objects
    never change, so only the new ones), check each copy's sha256, and record the backup in both stores.
    Raises StoreError naming the objects that failed, after recording what was copied."""
    if dst.url.rstrip("/") == src.url.rstrip("/"):
        raise BadInputError(f"backup --to {dst.url}: that is the store itself")
    last = next((e for e in reversed(_recorded(dst)) if e.get("from") == src.url), None)
    known: dict[str, dict[str, Any]] = dict(last["objects"]) if last else {}
    present = {info.key: info.size for info in listing(dst)}
    result = Copied()
    for info in listing(src):
        was = known.get(info.key)
        if was and was.get("version") == info.version and present.get(info.key) == info.size:
            result.unchanged += 1
            result.objects[info.key] = was
            continue
        try:
            sha256 = copy_object(src, dst, info)
        except StoreError as exc:
            result.failed.append(str(exc))
            continue
        result.copied, result.bytes = result.copied + 1, result.bytes + info.size
        result.objects[info.key] = {"size": info.size, "sha256": sha256, "version": info.version}
    entry = _entry(src, dst, result)
    dst.put(f"{layout.BACKUPS_PREFIX}{entry['id']}.json", dump_json(entry))
    src.put(f"{layout.BACKUPS_PREFIX}{entry['id']}.json", dump_json({k: v for k, v in entry.items() if k != "objects"}))
    if result.failed:
        raise StoreError(f"backup {entry['id']}: {len(result.failed)} object(s) failed: {result.failed[0]}")
    return {k: v for k, v in entry.items() if k != "objects"}


def _entry(src: Store, dst: Store, result: Copied) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}",
        "at": now.isoformat(timespec="microseconds"),  # (orders two backups of one second)
        "from": src.url,
        "to": dst.url,
        "copied": result.copied,
        "copied_bytes": result.bytes,
        "unchanged": result.unchanged,
        "failed": len(result.failed),
        "objects_total": len(result.objects),
        "objects": result.objects,
    }


def bring_back(backup_store: Store, store: Store) -> Copied:
    """Copy into `store` every backed-up object it lacks, from `backup_store` (each checked by its
    sha256). An object the store has is kept, except a ledger segment the backup holds more of (the
    store's bytes a prefix of the backup's): the store's own is never overwritten with other bytes."""
    present = {info.key: info for info in listing(store)}
    result = Copied()
    for info in listing(backup_store):
        mine = present.get(info.key)
        if mine is not None and not (layout.is_segment(info.key) and _extends(store, backup_store, mine, info)):
            result.unchanged += 1
            continue
        try:
            copy_object(backup_store, store, info)
        except StoreError as exc:
            result.failed.append(str(exc))
            continue
        result.copied, result.bytes = result.copied + 1, result.bytes + info.size
    return result


def _extends(store: Store, backup_store: Store, mine: ObjectInfo, theirs: ObjectInfo) -> bool:
    """True when the backup's copy of a segment is longer and begins with the store's bytes."""
    if theirs.size <= mine.size:
        return False
    return object_digest(store, mine.key, mine.size)[0] == object_digest(backup_store, theirs.key, mine.size)[0]
