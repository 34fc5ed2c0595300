"""Backup and restore as catalogue commands: one copy of each for the terminal and the flows."""

from __future__ import annotations

import json

from content_pipeline.commands.context import Context
from content_pipeline.commands.outcome import Artifact, Line, Outcome, said
from content_pipeline.commands.params import BackupParams, RestoreParams
from content_pipeline.errors import BadInputError
from content_pipeline.ops.backup import backup, backups, open_target
from content_pipeline.ops.restore import Restored, restore, restore_from, restore_from_backup
from content_pipeline.store import open_store
from content_pipeline.views.kept import kept_snapshots


def backup_command(ctx: Context, params: BackupParams) -> Outcome:
    """Copy the ledger, views and publishing's state to the backup store (`to`, else BACKUP_URL),
    incrementally, each copy checked by its sha256, the record signed with BACKUP_SIGNING_KEY when set;
    with list, the backups a store records."""
    settings = ctx.settings
    if params.list:
        source = open_store(params.source, **settings.s3_options()) if params.source else ctx.store()
        found = backups(source)
        return said(True, f"{len(found)} backup(s) recorded", *(json.dumps(e, sort_keys=True) for e in found))
    where = params.to or settings.backup_url
    if not where:
        raise BadInputError("backup: no target: set BACKUP_URL or give one (--to URL; the flow's `to` parameter)")
    store = ctx.store()
    done = backup(
        store,
        open_target(store, where, settings.s3_options(), "backup --to", existing=False),
        settings.backup_signing_key,
    )
    signed = "signed with BACKUP_SIGNING_KEY" if done["signed"] else "not signed (BACKUP_SIGNING_KEY is unset)"
    line = (
        f"backup {done['id']}: {done['copied']} object(s) copied ({done['copied_bytes']} bytes, each checked by "
        f"sha256), {done['unchanged']} unchanged, to {done['to']}; its record {signed}"
    )
    return said(True, line, line)


def restore_command(ctx: Context, params: RestoreParams) -> Outcome:
    """The emergency procedure: keep the views, release what gone runs left, write back lost records,
    rebuild every view from the ledger, sync, audit; or roll the views back to a kept snapshot, or bring a
    whole store back from a backup. Fails when something could not be repaired."""
    settings, store = ctx.settings, ctx.store()
    if params.list:
        kept = kept_snapshots(store)
        texts = [k.line() for k in kept] or ["restore: no view snapshot is kept"]
        return said(True, f"{len(kept)} view snapshot(s) kept", *texts)
    if params.snapshot is not None:
        result = restore_from(store, settings, params.snapshot)
    elif params.from_backup is not None:
        where = open_target(store, params.from_backup, settings.s3_options(), "restore --from-backup", existing=True)
        result = restore_from_backup(store, where, settings)
    else:
        result = restore(store, settings, dry_run=params.dry_run)
    return restored(result, "restore --dry-run" if params.dry_run else "restore")


def restored(result: Restored, prefix: str) -> Outcome:
    """A restore's lines, then its audit's verdict (the summary: the same, unprefixed)."""
    texts = result.lines()
    if result.audit is not None:
        texts.append("audit " + ("green" if result.audit.ok else f"FAILED: {'; '.join(result.audit.violations)}"))
    lines = tuple(Line(f"{prefix}: {t}", "info" if result.ok else "error") for t in texts)
    artifact = Artifact("restore", markdown="\n".join(f"- {t}" for t in texts))
    return Outcome(result.ok, "; ".join(texts), lines, artifacts=(artifact,))
