"""A backup's record (`backups/<id>.json` in its target): each object it holds with its size and sha256, and,
with BACKUP_SIGNING_KEY, an HMAC-SHA256 over the record's canonical bytes; and the checks a restore makes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import SecretStr

from content_pipeline.errors import BadInputError
from content_pipeline.store import ObjectInfo, Store, layout
from content_pipeline.views.snapshot import object_digest

SIGNATURE = "signature"  # the record's field holding `hmac-sha256:<hex>`
_SCHEME = "hmac-sha256:"
SHOWN = 5  # objects named in a refusal (then "and N more")


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the record without its signature, keys sorted, no spaces, ASCII only."""
    body = {k: v for k, v in entry.items() if k != SIGNATURE}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _mac(entry: dict[str, Any], key: SecretStr) -> str:
    return _SCHEME + hmac.new(key.get_secret_value().encode(), canonical(entry), hashlib.sha256).hexdigest()


def signed(entry: dict[str, Any], key: SecretStr | None) -> dict[str, Any]:
    """The record with its signature under `key` (as it was without a key)."""
    return entry if key is None else {**entry, SIGNATURE: _mac(entry, key)}


def signature_problem(entry: dict[str, Any], key: SecretStr | None) -> str | None:
    """None when the record may be trusted under `key` (anything goes without a key); else what is wrong."""
    if key is None:
        return None
    value = entry.get(SIGNATURE)
    if value is None:
        return "is not signed, and BACKUP_SIGNING_KEY is set"
    if not isinstance(value, str) or not hmac.compare_digest(value.encode(), _mac(entry, key).encode()):
        return "fails its signature check (changed since it was signed, or signed with another BACKUP_SIGNING_KEY)"
    return None


def _well_formed(entry: Any) -> bool:
    """A record naming its id, time and objects, each object with an int size and a sha256."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not isinstance(entry.get("at"), str):
        return False
    objects = entry.get("objects")
    return isinstance(objects, dict) and all(
        isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)
        for v in objects.values()
    )


def newest_record(backup_store: Store, where: str) -> dict[str, Any]:
    """The newest backup recorded in a target (the one a restore brings back); BadInputError when it holds
    none (a missing or empty folder) or when a record there does not read as one (damaged or planted)."""
    found = []
    for info in backup_store.list(layout.BACKUPS_PREFIX):
        try:
            entry = json.loads(backup_store.get(info.key) or b"")
        except ValueError:
            entry = None
        if not _well_formed(entry):
            raise BadInputError(f"{where}: {info.key} is not a backup record (damaged?): refused; nothing changed")
        found.append(entry)
    if not found:
        raise BadInputError(f"{where}: no backup there (no {layout.BACKUPS_PREFIX}<id>.json): nothing changed")
    return max(found, key=lambda e: str(e["at"]))


def _named(problems: list[str]) -> str:
    more = f", and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return "; ".join(problems[:SHOWN]) + more


def mismatches(backup_store: Store, objects: dict[str, dict[str, Any]], present: dict[str, ObjectInfo]) -> list[str]:
    """Each object of the record that the target does not hold as recorded: missing, another size, or bytes
    whose sha256 is not the recorded one (every object read in bounded chunks)."""
    wrong = []
    for key, want in sorted(objects.items()):
        info = present.get(key)
        if info is None:
            wrong.append(f"{key}: missing")
        elif info.size != want["size"]:
            wrong.append(f"{key}: {info.size} bytes, the record says {want['size']}")
        elif object_digest(backup_store, key, info.size) != (want["sha256"], want["size"]):
            wrong.append(f"{key}: its sha256 is not the recorded one")
    return wrong


def refuse_mismatches(where: str, entry: dict[str, Any], wrong: list[str]) -> None:
    """One line naming the objects that do not match (BadInputError), when any does not."""
    if wrong:
        raise BadInputError(
            f"{where}: backup {entry['id']}: {len(wrong)} object(s) do not match its record: {_named(wrong)}: "
            "refused; nothing changed"
        )


def refuse_outside(where: str, entry: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """A record naming keys no backup holds (the store's leases, its backup records...) is refused."""
    outside = sorted(k for k in entry["objects"] if not k.startswith(allowed))
    if outside:
        raise BadInputError(
            f"{where}: backup {entry['id']} names {len(outside)} key(s) a backup never holds: {_named(outside)}: "
            "refused; nothing changed"
        )
