"""Restore: the emergency procedure as one idempotent command. Keep the current view snapshot, release what
gone runs left, write back records the ledger lost from the views' copies, rebuild every view from the
ledger (torn tails repaired, hand edits undone), sync, audit; and roll the views back to a kept snapshot,
or bring a whole store back from a backup (checked first, publishing's state with it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from content_pipeline.claims.sweep import sweep
from content_pipeline.configs import RecoveryConfig
from content_pipeline.errors import BadInputError
from content_pipeline.ledger.quarantine import Damaged, damaged_records
from content_pipeline.ledger.scan import LedgerScan, stream_ledger, torn_by_gone_writers
from content_pipeline.ops.backup import bring_back
from content_pipeline.ops.salvage import Salvaged, find_lost, write_back
from content_pipeline.publish.history import read_history
from content_pipeline.publish.holds import holds
from content_pipeline.store import ReadOnlyStore, Store, layout
from content_pipeline.views.audit import AuditResult, audit
from content_pipeline.views.consolidate import consolidate, sync_checkpoint
from content_pipeline.views.kept import keep_current, kept_snapshots, roll_back
from content_pipeline.views.snapshot import load_manifest


@dataclass
class Restored:
    """What a restore changed (with `dry_run`: would change), what it could not repair, the snapshot it
    kept, and the audit after it."""

    changes: list[str] = field(default_factory=list)
    could_not: list[str] = field(default_factory=list)
    kept: str | None = None
    audit: AuditResult | None = None

    @property
    def ok(self) -> bool:
        return not self.could_not and (self.audit is None or self.audit.ok)

    def lines(self) -> list[str]:
        done = self.changes or ["nothing to restore: the views match the ledger"]
        kept = [f"kept the view snapshot {self.kept} (restore --from {self.kept} brings it back)"] if self.kept else []
        return kept + done + [f"could not repair: {line}" for line in self.could_not]


def _view_objects(store: Store) -> list[str]:
    """Every master view object lying in the store (current, previous, kept or left over): the copies of
    ledger lines a salvage may find lost records in."""
    prefixes = tuple(f"{layout.VIEW_OBJECTS}{name}-" for name in ("successes", "rejects"))
    return [info.key for info in store.list(layout.VIEW_OBJECTS) if info.key.startswith(prefixes)]


def _ledger_lost(store: Store, scan: LedgerScan, damaged: list[Damaged]) -> bool:
    """Whether the ledger may have lost records the views copied: a damaged line awaits a decision, or a
    segment the views were built from is gone or shorter."""
    if any(not d.accepted for d in damaged):
        return True
    manifest = load_manifest(store)[0] or {}
    now = dict(scan.segments)
    return any(now.get(key, -1) < size for key, size in manifest.get("segments", []))


def _plan(store: Store, settings: RecoveryConfig, restored: Restored, views: bool) -> tuple[list[Damaged], Salvaged]:
    """What a restore would change, into `restored.changes`: the damaged lines still awaiting a decision,
    and the lost records the views' copies hold. The views' rebuild is computed (a pass over the ledger)
    only when `views` asks, or when nothing else would change (so a restore with nothing to do changes
    nothing)."""
    restored.changes += sweep(store, settings.sweep_grace_s, dry_run=True).lines
    scan = stream_ledger(store, lambda _: None)
    restored.changes += [f"torn tail to cut off and keep in quarantine: {line}" for line in torn_by_gone_writers(scan)]
    damaged = damaged_records(store, scan)
    found = find_lost(store, _view_objects(store), damaged) if _ledger_lost(store, scan, damaged) else Salvaged()
    if found.records:
        slugs = ", ".join(sorted(set(found.records.values()))[:5])
        restored.changes.append(
            f"{len(found.records)} record(s) lost from the ledger to write back from the views' copies: {slugs}"
        )
    if views or not restored.changes:
        rebuilt = consolidate(ReadOnlyStore(store), verify=True)
        restored.changes += [f"view {name} to rebuild from the ledger" for name in (rebuilt.changed if rebuilt else [])]
    return damaged, found


def restore(store: Store, settings: RecoveryConfig, *, dry_run: bool = False) -> Restored:
    """The emergency procedure; a second restore in a row changes nothing (it only audits). With `dry_run`,
    what it would change, changing nothing."""
    restored = Restored()
    damaged, found = _plan(store, settings, restored, views=dry_run)
    if dry_run or not restored.changes:
        restored.could_not = [d.line() for d in damaged if not d.accepted]
        if not dry_run:
            restored.audit = audit(store)
        return restored
    restored.changes = []
    restored.kept = keep_current(store, "before a restore", settings.view_backups_keep)
    restored.changes += sweep(store, settings.sweep_grace_s).lines
    write_back(store, found)
    if found.records:
        where = ", ".join(found.segments)
        restored.changes.append(f"{len(found.records)} record(s) lost from the ledger written back to {where}")
    result = consolidate(store, verify=True)
    if result is not None:
        restored.changes += [f"ledger repaired: {line}" for line in result.repaired]
        restored.changes += [f"view {name} rebuilt from the ledger" for name in result.changed]
    if sync_checkpoint(store):
        restored.changes.append("checkpoint rewritten from master")
    settled = {d.where for d in found.settled}
    restored.could_not = [d.line() for d in damaged if not d.accepted and d.where not in settled]
    restored.audit = audit(store)
    return restored


def restore_from(store: Store, settings: RecoveryConfig, snapshot_id: str) -> Restored:
    """Roll the views back to the kept snapshot `snapshot_id` (the current one kept first); an id that is
    not kept is refused before anything is kept."""
    kept = [k.id for k in kept_snapshots(store)]
    if snapshot_id not in kept:
        raise BadInputError(f"restore --from {snapshot_id}: no such kept snapshot (kept: {', '.join(kept) or 'none'})")
    restored = Restored()

    def keep() -> None:  # once the kept snapshot checks out, before the views change
        restored.kept = keep_current(store, f"before rolling back to {snapshot_id}", settings.view_backups_keep)

    restored.changes = [f"view {n} rolled back to snapshot {snapshot_id}" for n in roll_back(store, snapshot_id, keep)]
    return restored


def restore_from_backup(store: Store, backup_store: Store, settings: RecoveryConfig) -> Restored:
    """Bring back from `backup_store` every object of its newest backup the store lacks (the whole backup
    checked first: refused, nothing changed, when it does not check out; a copy that then fails its check
    stops it, BadInputError, before anything else is done), drop the publish quarantines the attempt log
    shows released since, then restore."""
    brought = bring_back(backup_store, store, settings.backup_signing_key)
    settled = settle_quarantines(store)
    restored = restore(store, settings)
    head = f"brought back {brought.copied} object(s) ({brought.bytes} bytes) from {backup_store.url}"
    restored.changes[:0] = [head + f"; {brought.unchanged} the store already had", *brought.notes, *settled]
    return restored


def _when(value: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def settle_quarantines(store: Store) -> list[str]:
    """Drop each publish quarantine that the attempt log shows released after it was made (brought back from
    a backup older than the release: the operator's release stands). Every other quarantine stays, so a
    post taken down stays down."""
    held = holds(store)
    last: dict[str, dict[str, Any]] = {}
    for entry in read_history(store, keep_damaged=False).lines if held else []:
        if entry["kind"] in ("takedown", "release") and entry.get("slug") in held:
            last[entry["slug"]] = entry
    settled = []
    for slug, entry in sorted(held.items()):
        final, made = last.get(slug), _when(entry.get("at"))
        if final is None or final["kind"] != "release" or made is None or entry.get("damaged"):
            continue
        released = _when(final["at"])
        if released is None or released < made:
            continue
        store.delete(layout.publish_quarantine(slug))
        settled.append(
            f"publish quarantine of {slug} (from {entry['at']}) not kept: the attempt log has its release "
            f"({final['at']} by {final.get('by', '?')})"
        )
    return settled
