"""The operations' subcommands, run in this process on the store the flows use: status, progress, health,
backup, restore, report, template-rank, templates, quarantine and view (each imports what it needs)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from content_pipeline.errors import BadInputError
from content_pipeline.settings import Settings
from content_pipeline.store import layout, open_store, store_for
from flows.prefect_api import configured_api_url

PERIODS = ("daily", "weekly", "30d")  # as ops/kpis.PERIODS (not imported here: polars is slow to import)
OPS_HELP = {
    "status": "counts from the store (read-only, quick)",
    "progress": "remaining work, share done, the last hour's rate and the time to finish",
    "health": "every check green, amber or red with one line each; exit 0 green, 1 amber, 2 red",
    "view": "print one current master view (read-only)",
    "backup": "copy the ledger, views and publishing's state to another store, incrementally, checked, signed",
    "restore": "keep the views, release what gone runs left, write back lost records, rebuild, sync, audit",
    "report": "KPI or cost figures of a period against the prior one; stored with PNG charts",
    "template-rank": "rank prompt templates by QA pass rate and cost per success; --apply retires/promotes",
    "templates": "list the prompt templates (active ones marked); --add FILE stores and activates a version",
    "quarantine": "damaged ledger records (--accept-loss releases their slugs); SLUG --reason: take a post down",
}


def settings_for_command(**flags: object) -> Settings:
    """The settings of every command: the environment, the STORE_BLOCK / LLM_BLOCK blocks when a Prefect API
    is configured (the store the flows use), then the flags."""
    from flows.resolve import resolved_settings

    return resolved_settings(configured_api_url(), **flags)


def ops_arguments(name: str, cmd: argparse.ArgumentParser) -> None:
    """The arguments of the operation `name`."""
    if name == "report":
        cmd.add_argument("kind", choices=["kpi", "cost"], help="kpi: outcomes and rates; cost: spend and tokens")
        cmd.add_argument("--period", choices=PERIODS, default="daily", help="default daily")
    if name == "template-rank":
        cmd.add_argument("--period", choices=PERIODS, default="30d", help="default 30d")
        cmd.add_argument("--apply", action="store_true", help="change the active set as named, and record it")
    if name == "templates":
        cmd.add_argument("--add", metavar="FILE", help="a JSON file: id, version, system, user (and fields)")
    if name in ("status", "progress", "health", "report", "template-rank"):
        cmd.add_argument("--json", action="store_true", help="print one JSON object")
    if name == "view":
        cmd.add_argument("view", choices=list(layout.VIEW_FILES), help="which view")
    if name == "quarantine":
        from flows.publish_cli import quarantine_arguments

        quarantine_arguments(cmd)
        cmd.add_argument("--json", action="store_true", help="print one JSON object per damaged record")
        cmd.add_argument(
            "--accept-loss",
            metavar="WHERE",
            help="accept the loss of the damaged record at WHERE ('<segment>: line N', or all): its slug is "
            "generated again by the next run",
        )
    if name in ("backup", "restore"):
        _recovery_arguments(name, cmd)


def _recovery_arguments(name: str, cmd: argparse.ArgumentParser) -> None:
    what = cmd.add_mutually_exclusive_group(required=name == "backup")
    if name == "backup":
        what.add_argument("--to", metavar="URL", help="the backup store: a folder path or s3://bucket/prefix")
        what.add_argument("--list", action="store_true", help="the backups recorded in the store (or --from URL)")
        cmd.add_argument("--from", dest="source", metavar="URL", help="with --list: the backups a target holds")
        return
    what.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    what.add_argument("--list", action="store_true", help="the view snapshots kept by earlier restores")
    what.add_argument("--from", dest="snapshot", metavar="ID", help="roll the views back to a kept snapshot")
    what.add_argument(
        "--from-backup",
        metavar="URL",
        help="bring a whole store back from a `backup` target (its newest backup, every object checked first)",
    )


def _status(args: argparse.Namespace) -> int:
    from content_pipeline.ops.status import status

    settings = settings_for_command()
    result = status(store_for(settings, read_only=True), settings.catalogue, settings.s3_options())
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            if key == "batches_outstanding":
                print(f"{key:<{width}}  {len(value)}")
                for row in value:
                    sent = row["batch_id"] or "not submitted yet"
                    what = f"{row['requests']} request(s), {row['age_s'] / 3600:.1f} h old"
                    print(f"{'':<{width}}    {row['run_id']}/{row['name']} ({sent}): {what}")
                continue
            print(f"{key:<{width}}  {value}")
    return 0


def _progress(args: argparse.Namespace) -> int:
    from content_pipeline.ops.progress import progress, progress_line

    settings = settings_for_command()
    figures = progress(store_for(settings, read_only=True), settings.catalogue, settings.s3_options())
    print(json.dumps(figures, sort_keys=True) if args.json else progress_line(figures))
    return 0


def _health(args: argparse.Namespace) -> int:
    from content_pipeline.errors import StoreError
    from content_pipeline.ops.health import Check, Health, health
    from flows.prefect_probe import prefect_probes

    settings = settings_for_command()
    try:
        store = store_for(settings)
    except StoreError as exc:  # the store does not answer: red, and nothing else can be read
        result = Health([Check("store", "red", str(exc))])
    else:
        result = health(store, settings, probes=prefect_probes(configured_api_url()))
    print(json.dumps(result.to_dict(), sort_keys=True) if args.json else "\n".join(result.lines()))
    return result.exit_code


def _backup(args: argparse.Namespace) -> int:
    from content_pipeline.ops.backup import backup, backups, open_target

    settings = settings_for_command()
    if args.list:
        source = open_store(args.source, **settings.s3_options()) if args.source else store_for(settings)
        for entry in backups(source):
            print(json.dumps(entry, sort_keys=True))
        return 0
    store = store_for(settings)
    target = open_target(store, args.to, settings.s3_options(), "backup --to", existing=False)
    done = backup(store, target, settings.backup_signing_key)
    signed = "signed with BACKUP_SIGNING_KEY" if done["signed"] else "not signed (BACKUP_SIGNING_KEY is unset)"
    print(
        f"backup {done['id']}: {done['copied']} object(s) copied ({done['copied_bytes']} bytes, each checked by "
        f"sha256), {done['unchanged']} unchanged, to {done['to']}; its record {signed}"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from content_pipeline.ops.backup import open_target
    from content_pipeline.ops.restore import restore, restore_from, restore_from_backup
    from content_pipeline.views.kept import kept_snapshots

    settings = settings_for_command()
    store = store_for(settings)
    if args.list:
        kept = kept_snapshots(store)
        print("\n".join(k.line() for k in kept) if kept else "restore: no view snapshot is kept")
        return 0
    if args.snapshot:
        result = restore_from(store, settings, args.snapshot)
    elif args.from_backup:
        where = open_target(store, args.from_backup, settings.s3_options(), "restore --from-backup", existing=True)
        result = restore_from_backup(store, where, settings)
    else:
        result = restore(store, settings, dry_run=args.dry_run)
    prefix = "restore --dry-run" if args.dry_run else "restore"
    for line in result.lines():
        print(f"{prefix}: {line}")
    if result.audit is not None:
        print(f"{prefix}: audit " + ("green" if result.audit.ok else f"FAILED: {'; '.join(result.audit.violations)}"))
    return 0 if result.ok else 1


def _report(args: argparse.Namespace) -> int:
    from content_pipeline.ops.reports import build_report, terminal, write_report

    settings = settings_for_command()
    store = store_for(settings)
    report = build_report(store, args.kind, args.period)
    if not store.read_only:
        write_report(store, report)
    if args.json:
        print(json.dumps(report.to_dict(), sort_keys=True, default=str))
        return 0
    print(terminal(report))
    if report.files:
        print(f"report: stored in {store.url}/{report.files['markdown'].rsplit('/', 1)[0]}/ with its charts")
    return 0


def _template_rank(args: argparse.Namespace) -> int:
    from content_pipeline.ops.template_rank import decide, rank_templates

    settings = settings_for_command()
    store = store_for(settings)
    ranking = rank_templates(store, args.period)
    if not store.read_only:
        decide(store, ranking, args.apply)
    print(json.dumps(ranking.to_dict(), sort_keys=True) if args.json else "\n".join(ranking.lines()))
    return 0


def _templates(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from content_pipeline.generation.templates import PromptTemplate, read_active, save_template, stored_templates
    from content_pipeline.generation.templates import write_active as activate

    store = store_for(settings_for_command())
    if args.add is not None:
        try:
            template = PromptTemplate.model_validate_json(Path(args.add).read_bytes())
        except OSError as exc:
            raise BadInputError(f"templates --add {args.add}: {exc.strerror}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise BadInputError(
                f"templates --add {args.add}: {''.join(f'{loc}: ' for loc in err['loc'][:1])}"
                f"{str(err['msg']).removeprefix('Value error, ')}: nothing stored"
            ) from None
        stored = save_template(store, template)
        active, version = read_active(store)
        if template.key not in active:
            activate(store, {**active, template.key: 1}, version)
        print(f"templates: {template.key} {'stored' if stored else 'already stored'} and active")
    active, _ = read_active(store)
    for key in stored_templates(store):
        print(f"{key}  {'active, weight ' + str(active[key]) if key in active else 'inactive'}")
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    from content_pipeline.ops.quarantine import accept, quarantined
    from content_pipeline.publish.quarantine import quarantined as held
    from flows.publish_cli import quarantine_item

    if args.item:
        return quarantine_item(args)
    settings = settings_for_command()
    if args.accept_loss is not None:
        for record in accept(store_for(settings), args.accept_loss):
            print(f"quarantine: loss accepted: {record.where} (slug {record.slug or 'unreadable'})")
        return 0
    found = quarantined(store_for(settings, read_only=True))
    for record in found:
        if args.json:
            fields = {"where": record.where, "what": record.what, "slug": record.slug, "kept": record.kept}
            print(json.dumps({**fields, "accepted": record.accepted}, sort_keys=True))
        else:
            print(record.line())
    if not found and not args.json:
        print("quarantine: no damaged ledger records")
    for slug, entry in sorted(held(store_for(settings, read_only=True)).items()):
        if args.json:
            print(json.dumps({"held_from_publishing": slug, **entry}, sort_keys=True))
        else:
            print(
                f"quarantine: {slug} held from publishing since {entry.get('at', '?')} by {entry.get('by', '?')}: "
                f"{entry['reason']} (`content-pipeline quarantine release {slug}` lets it go)"
            )
    return 0


def _view(args: argparse.Namespace) -> int:
    from content_pipeline.views.snapshot import stream_view

    if not stream_view(store_for(settings_for_command(), read_only=True), args.view, sys.stdout.buffer):
        print("error: no views are published yet: run `content-pipeline consolidate` (or go-live)", file=sys.stderr)
        return 1
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "status": _status,
    "progress": _progress,
    "health": _health,
    "view": _view,
    "backup": _backup,
    "restore": _restore,
    "report": _report,
    "template-rank": _template_rank,
    "templates": _templates,
    "quarantine": _quarantine,
}
