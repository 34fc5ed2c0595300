"""Kept view snapshots: a published manifest copied aside before a restore (its objects are then never
collected), listed, and made current again on demand; the newest VIEW_BACKUPS_KEEP are kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from content_pipeline.errors import BadInputError, StoreError
from content_pipeline.store import Store, layout
from content_pipeline.views.snapshot import dump_json, intact, load_manifest, manifest_cell


@dataclass(frozen=True)
class KeptSnapshot:
    """One kept snapshot: its id, when and why it was kept, and the manifest it was."""

    id: str
    kept_at: str
    why: str
    manifest: dict[str, Any]

    def line(self) -> str:
        published = self.manifest.get("published_at", "?")
        return f"{self.id}  kept {self.kept_at} ({self.why}); views published {published}"


def _key(snapshot_id: str) -> str:
    return f"{layout.KEPT_VIEWS}{snapshot_id}.json"


def kept_snapshots(store: Store) -> list[KeptSnapshot]:
    """Every kept snapshot, oldest first; an unreadable one is left out (and so never rolled back to)."""
    out = []
    for info in store.list(layout.KEPT_VIEWS):
        try:
            entry = json.loads(store.get(info.key) or b"")
            out.append(KeptSnapshot(entry["id"], entry["kept_at"], entry["why"], dict(entry["manifest"])))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda k: (k.kept_at, k.id))


def protected_objects(store: Store) -> set[str]:
    """The view objects a kept snapshot names: never collected while it is kept."""
    return {key for kept in kept_snapshots(store) for key in kept.manifest.get("files", {}).values()}


def keep_current(store: Store, why: str, keep: int) -> str | None:
    """Keep the current snapshot (once: kept again it keeps its id); returns its id, None when no readable
    manifest is published. The oldest kept beyond `keep` are removed."""
    manifest = load_manifest(store)[0]
    if manifest is None:
        return None
    existing = {k.manifest.get("snapshot"): k.id for k in kept_snapshots(store)}
    if manifest.get("snapshot") in existing:
        return existing[manifest.get("snapshot")]
    now = datetime.now(UTC)
    snapshot_id = f"{now:%Y%m%dT%H%M%SZ}-{manifest.get('snapshot', 'legacy')}"
    entry = {"id": snapshot_id, "kept_at": now.isoformat(timespec="seconds"), "why": why, "manifest": manifest}
    store.put(_key(snapshot_id), dump_json(entry))
    for old in kept_snapshots(store)[:-keep]:
        store.delete(_key(old.id))
    return snapshot_id


def roll_back(store: Store, snapshot_id: str, before: Callable[[], None] = lambda: None) -> list[str]:
    """Make the kept snapshot `snapshot_id` current; the names of the views that change. `before` runs once
    the snapshot checks out and before anything changes (it keeps the current snapshot). Refused, with
    nothing changed, when one of its objects is gone or altered."""
    chosen = next((k for k in kept_snapshots(store) if k.id == snapshot_id), None)
    if chosen is None:
        raise BadInputError(f"restore --from {snapshot_id}: no such kept snapshot")
    files, sha256 = chosen.manifest.get("files", {}), chosen.manifest.get("sha256", {})
    for name, key in sorted(files.items()):
        if not intact(store, key, sha256.get(name)):
            raise StoreError(
                f"restore --from {snapshot_id}: its {name} view ({key}) is gone or altered: not rolled back"
            )
    current, version, _ = load_manifest(store)
    changed = sorted(n for n, key in files.items() if (current or {}).get("files", {}).get(n) != key)
    if not changed:
        return []
    before()
    current, version, _ = load_manifest(store)  # (read again: keeping it may have taken a moment)
    previous = dict((current or {}).get("files", {}))
    manifest = {**chosen.manifest, "previous_files": previous, "rolled_back_at": datetime.now(UTC).isoformat()}
    if not manifest_cell(store).swap(dump_json(manifest), version):
        raise StoreError(f"restore --from {snapshot_id}: the views changed meanwhile (a consolidation): try again")
    return changed
