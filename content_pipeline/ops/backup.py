"""Backups: the ledger, the view snapshots, publishing's state and what a restore needs, copied to another
store (a folder or an S3 prefix, never inside the store) incrementally, each copy checked by its sha256, and
each backup recorded in both stores; the target's record lists every object's sha256 and may be signed."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from content_pipeline.errors import BadInputError, StoreError
from content_pipeline.ops.backup_record import (
    SIGNATURE,
    mismatches,
    newest_record,
    refuse_mismatches,
    refuse_outside,
    signature_problem,
    signed,
)
from content_pipeline.store import ObjectInfo, Store, layout, open_store
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
    layout.PUBLISH_PREFIX,  # the attempt log, the publish quarantines (take-downs) and the halt switch
    layout.ENGAGEMENT_PREFIX,  # what readers did: pulled once, and a source may not give old days again
)
APPENDED = (
    layout.LEDGER_PREFIX,
    layout.INTENTS_PREFIX,
    layout.PUBLISH_ATTEMPTS,
    layout.ENGAGEMENT_PREFIX,
)  # logs a folder store grows


@dataclass
class Copied:
    """What one copy between stores did: objects copied (and their bytes), left as they were, and those
    that failed their check or could not be copied."""

    copied: int = 0
    bytes: int = 0
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> size, sha256, source version
    notes: list[str] = field(default_factory=list)


def listing(store: Store, prefixes: tuple[str, ...] = BACKED_UP) -> list[ObjectInfo]:
    return [info for prefix in prefixes for info in store.list(prefix) if info.key.startswith(prefix)]


def _place(url: str) -> tuple[str, str]:
    """Where a store lives, as (space, path ending in /): a resolved folder, or an S3 bucket and prefix."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        prefix = parsed.path.strip("/")
        return f"s3://{parsed.netloc}", f"{prefix}/" if prefix else ""
    path = Path(parsed.path if parsed.scheme == "file" else url).expanduser().resolve()
    return "file", str(path).rstrip("/") + "/"


def check_apart(store_url: str, target_url: str, what: str) -> None:
    """BadInputError (one line) when the backup target is the store, lies inside it, or holds it."""
    (space, path), (other, inside) = _place(store_url), _place(target_url)
    if space != other:
        return
    if path == inside:
        raise BadInputError(f"{what} {target_url}: that is the store itself: refused")
    if inside.startswith(path):
        raise BadInputError(f"{what} {target_url}: the target is inside the store {store_url}: refused")
    if path.startswith(inside):
        raise BadInputError(f"{what} {target_url}: the store {store_url} is inside the target: refused")


def open_target(store: Store, url: str, s3_options: dict[str, str | None], what: str, *, existing: bool) -> Store:
    """The backup store at `url`, checked to lie apart from `store` before it is opened (opening a folder
    creates it); with `existing` (a restore) a folder that is not there is refused, not created."""
    check_apart(store.url, url, what)
    scheme = urlparse(url).scheme
    if existing and scheme in ("", "file") and not Path(_place(url)[1]).is_dir():
        raise BadInputError(f"{what} {url}: no such folder: nothing changed")
    return open_store(url, **s3_options)


def copy_object(src: Store, dst: Store, info: ObjectInfo, expected: str | None = None) -> str:
    """Copy one object in bounded chunks and read the copy back: its sha256 (StoreError when the copy
    does not hash as the original did). With `expected`, bytes that do not hash to it are never committed."""
    digest, read = hashlib.sha256(), 0
    writer = dst.writer(info.key)
    try:
        for data in object_chunks(src, info.key, info.size):
            digest.update(data)
            read += len(data)
            writer.write(data)
        if expected is not None and (digest.hexdigest(), read) != (expected, info.size):
            raise StoreError(f"{info.key}: changed in {src.url} while it was copied (no longer as recorded)")
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


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("objects", SIGNATURE)}


def backups(store: Store) -> list[dict[str, Any]]:
    """The backups recorded in `store` (the source's: where each went; a target's: what it holds)."""
    return [_summary(entry) for entry in _recorded(store)]


def _known(src: Store, dst: Store, key: SecretStr | None) -> dict[str, dict[str, Any]]:
    """What the last backup of `src` to `dst` recorded, to copy only what changed since; a record that does
    not check under `key` (edited in the target, or unsigned) is not trusted: everything is copied again."""
    last = next((e for e in reversed(_recorded(dst)) if e.get("from") == src.url), None)
    if last is None or signature_problem(last, key) is not None or not isinstance(last.get("objects"), dict):
        return {}
    return dict(last["objects"])


def backup(src: Store, dst: Store, key: SecretStr | None = None) -> dict[str, Any]:
    """Copy to `dst` every object it lacks or that changed since the last backup to it (ledger objects
    never change, so only the new ones), check each copy's sha256, and record the backup in both stores
    (the target's record signed with `key`, BACKUP_SIGNING_KEY). Raises StoreError naming the objects
    that failed, after recording what was copied."""
    check_apart(src.url, dst.url, "backup --to")
    known = _known(src, dst, key)
    present = {info.key: info for info in listing(dst)}
    result = Copied()
    for info in listing(src):
        was, there = known.get(info.key), present.get(info.key)
        if (
            was
            and there is not None
            and was.get("version") == info.version
            and there.size == info.size
            and was.get("stored", there.version) == there.version  # (not rewritten in the target since)
        ):
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
    stored = {info.key: info.version for info in listing(dst)}
    for name, entry in result.objects.items():
        entry["stored"] = stored.get(name)
    entry = _entry(src, dst, result, key is not None)
    dst.put(f"{layout.BACKUPS_PREFIX}{entry['id']}.json", dump_json(signed(entry, key)))
    src.put(f"{layout.BACKUPS_PREFIX}{entry['id']}.json", dump_json(_summary(entry)))
    if result.failed:
        raise StoreError(f"backup {entry['id']}: {len(result.failed)} object(s) failed: {result.failed[0]}")
    return _summary(entry)


def _entry(src: Store, dst: Store, result: Copied, is_signed: bool) -> dict[str, Any]:
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
        "signed": is_signed,
        "objects": result.objects,
    }


def checked_record(backup_store: Store, key: SecretStr | None, where: str) -> dict[str, Any]:
    """The newest backup in `backup_store`, once its signature (with a key) and every object's size and
    sha256 check out; BadInputError (one line, naming what does not) before anything changes."""
    entry = newest_record(backup_store, where)
    problem = signature_problem(entry, key)
    if problem is not None:
        raise BadInputError(f"{where}: backup {entry['id']} {problem}: refused; nothing changed")
    refuse_outside(where, entry, BACKED_UP)
    present = {info.key: info for info in listing(backup_store)}
    refuse_mismatches(where, entry, mismatches(backup_store, entry["objects"], present))
    return entry


def bring_back(
    backup_store: Store, store: Store, key: SecretStr | None = None, where: str = "restore --from-backup"
) -> Copied:
    """Copy into `store` every object of the newest backup in `backup_store` that it lacks, once the whole
    backup checks out (`checked_record`); each copy checked again against the record before it is stored,
    and the first that fails stops it (BadInputError, one line): nothing more is copied.
    An object the store has is kept, except a log (ledger segment, intents, attempt log) the backup holds
    more of, the store's bytes a prefix of the backup's: the store's own is never overwritten with other
    bytes. So two backups brought back one after the other leave their union, each log at its longest and
    each cell (a folder of numbered versions) at the highest version either held."""
    where = f"{where} {backup_store.url}"
    entry = checked_record(backup_store, key, where)
    result = Copied(notes=_notes(entry, key))
    present = {info.key: info for info in listing(store)}
    for name, want in sorted(entry["objects"].items()):
        info = ObjectInfo(name, want["size"], "")
        mine = present.get(name)
        if mine is not None and not (name.startswith(APPENDED) and _extends(store, backup_store, mine, info)):
            result.unchanged += 1
            continue
        try:
            copy_object(backup_store, store, info, want["sha256"])
        except StoreError as exc:
            raise BadInputError(_stopped(where, entry, str(exc), result.copied)) from None
        result.copied, result.bytes = result.copied + 1, result.bytes + info.size
    return result


def _stopped(where: str, entry: dict[str, Any], problem: str, copied: int) -> str:
    """The line of a restore stopped by a copy that failed its check: the objects brought back before it are
    whole and checked (objects the store lacked, or a log's longer copy), so they stay."""
    if copied == 0:
        done = "nothing changed"
    else:
        done = f"{copied} object(s) already brought back are kept, each checked"
    return (
        f"{where}: backup {entry['id']}: {problem}: stopped; {done}; "
        "run restore --from-backup again once the backup is sound"
    )


def _notes(entry: dict[str, Any], key: SecretStr | None) -> list[str]:
    signature = "its signature checked with BACKUP_SIGNING_KEY" if key is not None else "not signed"
    if key is None and entry.get(SIGNATURE):
        signature = "signed, but BACKUP_SIGNING_KEY is not set here: its signature was not checked"
    objects = len(entry["objects"])
    return [f"backup {entry['id']} of {entry['at']}: {objects} object(s), each checked by sha256; {signature}"]


def _extends(store: Store, backup_store: Store, mine: ObjectInfo, theirs: ObjectInfo) -> bool:
    """True when the backup's copy of a log is longer and begins with the store's bytes."""
    if theirs.size <= mine.size:
        return False
    return object_digest(store, mine.key, mine.size)[0] == object_digest(backup_store, theirs.key, mine.size)[0]
