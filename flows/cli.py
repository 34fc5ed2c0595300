"""The `content-pipeline` command: go-live and each stage run the core directly, or as their Prefect flow
when a Prefect API is configured; `status` and `view` only read the store, `quarantine` lists damaged
records (and records an operator's acceptance of their loss)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from content_pipeline.errors import BadInputError, PipelineError
from content_pipeline.settings import MAX_REPLAY_HOURS, Settings
from content_pipeline.store import layout, open_store, store_for
from flows.prefect_api import configured_api_url

if TYPE_CHECKING:
    from content_pipeline.ops.replay import ReplayWindow
    from content_pipeline.run.report import RunReport

RUN_COMMANDS = ("go-live", "replay-failed", "inventory", "batch", "preflight", "generate")  # those with a run id
MAINTENANCE = ("consolidate", "audit", "sync", "sweep")
WHOLE_RUNS = ("go-live", "replay-failed")  # (as run.commands.WHOLE_RUNS, without importing the run's modules)
# run here, on the store the flows use
OPS = ("status", "progress", "health", "backup", "restore", "report", "template-rank", "templates")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="content-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "go-live": "the whole run: inventory, batch, preflight, generate, consolidate, audit, sync, audit",
        "replay-failed": "generate again the transient rejects of the last N hours (--include-qa: QA ones too)",
        "inventory": "read the catalogue: which items need content",
        "batch": "claim up to --limit items of the run's inventory",
        "preflight": "filter the run's batch; refuse when the budget is too low",
        "generate": "generate the run's batch with the LLM",
        "consolidate": "rebuild master, indexes, usage and checkpoint from the ledger",
        "audit": "check every invariant; non-zero exit on a violation",
        "sync": "rewrite the checkpoint from master",
        "sweep": "release the leases and queued claims of runs that are gone, naming each",
        "status": "counts from the store (read-only, quick)",
        "progress": "remaining work, share done, the last hour's rate and the time to finish",
        "health": "every check green, amber or red with one line each; exit 0 green, 1 amber, 2 red",
        "view": "print one current master view (read-only)",
        "backup": "copy the ledger and the view snapshots to another store, incrementally, each copy checked",
        "restore": "keep the views, release what gone runs left, write back lost records, rebuild, sync, audit",
        "report": "KPI or cost figures of a period against the prior one; stored with PNG charts",
        "template-rank": "rank prompt templates by QA pass rate and cost per success; --apply retires/promotes",
        "templates": "list the prompt templates (active ones marked); --add FILE stores and activates a version",
        "quarantine": "list the ledger's damaged records; --accept-loss releases their held slugs",
        "fake-llm": "a local OpenAI-compatible server to rehearse a run (fake-llm serve)",
    }
    for name in (*RUN_COMMANDS, *MAINTENANCE, *OPS, "view", "quarantine", "fake-llm"):
        cmd = sub.add_parser(name, help=helps[name], description=helps[name])
        if name in (*RUN_COMMANDS, *MAINTENANCE):
            _mode_arguments(cmd)
        if name in RUN_COMMANDS:
            cmd.add_argument("--scope", choices=["all", "promo"], help="all items, or promo items only (SCOPE)")
            cmd.add_argument("--limit", type=int, metavar="N", help="most items to claim (LIMIT)")
            cmd.add_argument("--budget-usd", type=float, metavar="X", help="hard spend ceiling, USD (BUDGET_USD)")
            cmd.add_argument("--run-id", metavar="ID", help="run id (RUN_ID); made unique when not given")
        if name == "replay-failed":
            cmd.add_argument("--since-hours", type=float, required=True, metavar="N", help="the window: last N hours")
            cmd.add_argument("--include-qa", action="store_true", help="QA and content-policy rejects too")
        if name == "sweep":
            cmd.add_argument("--dry-run", action="store_true", help="name what would be released; release nothing")
        if name == "report":
            cmd.add_argument("kind", choices=["kpi", "cost"], help="kpi: outcomes and rates; cost: spend and tokens")
            cmd.add_argument("--period", choices=["daily", "weekly", "30d"], default="daily", help="default daily")
        if name == "template-rank":
            cmd.add_argument("--period", choices=["daily", "weekly", "30d"], default="30d", help="default 30d")
            cmd.add_argument("--apply", action="store_true", help="change the active set as named, and record it")
        if name == "templates":
            cmd.add_argument("--add", metavar="FILE", help="a JSON file: id, version, system, user (and fields)")
        if name in ("status", "progress", "health", "report", "template-rank"):
            cmd.add_argument("--json", action="store_true", help="print one JSON object")
        if name == "view":
            cmd.add_argument("view", choices=list(layout.VIEW_FILES), help="which view")
        if name == "quarantine":
            cmd.add_argument("--json", action="store_true", help="print one JSON object per damaged record")
            cmd.add_argument(
                "--accept-loss",
                metavar="WHERE",
                help="accept the loss of the damaged record at WHERE ('<segment>: line N', or all): its slug is "
                "generated again by the next run",
            )
        if name == "fake-llm":
            _fake_llm_arguments(cmd)
        if name in ("backup", "restore"):
            _recovery_arguments(name, cmd)
    return parser


def _mode_arguments(cmd: argparse.ArgumentParser) -> None:
    mode = cmd.add_mutually_exclusive_group()
    mode.add_argument(
        "--prefect",
        action="store_true",
        help="run it as a Prefect flow even when no Prefect API is configured (a temporary server) (RUN_MODE)",
    )
    mode.add_argument("--direct", action="store_true", help="run the core directly even when one is (RUN_MODE)")


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
    what.add_argument("--from-backup", metavar="URL", help="bring a whole store back from a `backup` target")


def _fake_llm_arguments(cmd: argparse.ArgumentParser) -> None:
    from content_pipeline.rehearsal.faults import FAULTS

    cmd.add_argument("action", choices=["serve"], help="serve: run the server until interrupted")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    cmd.add_argument("--key", help="the only API key accepted (default: any key)")
    cmd.add_argument("--latency-ms", type=float, default=0.0, help="mean latency of an answer, ms")
    cmd.add_argument("--jitter", type=float, default=0.0, help="latency spread: uniform within mean x (1 +- J)")
    cmd.add_argument("--rpm", type=int, default=0, help="requests per minute before 429 (0: no limit)")
    cmd.add_argument("--tpm", type=int, default=0, help="tokens per minute before 429 (0: no limit)")
    cmd.add_argument("--burst", type=float, default=0.0, help="share of a minute's allowance usable at once")
    cmd.add_argument("--seed", type=int, help="seed for latencies and fault draws")
    cmd.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:RATE][@TEXT][*TIMES]",
        help="a fault on demand (repeatable); KIND: " + ", ".join(FAULTS),
    )


def _settings(**flags: object) -> Settings:
    """The settings of every command: the environment, the STORE_BLOCK / LLM_BLOCK blocks when a Prefect API
    is configured (the store the flows use), then the flags."""
    from flows.resolve import resolved_settings

    return resolved_settings(configured_api_url(), **flags)


def _fake_llm(args: argparse.Namespace) -> int:
    import signal

    from content_pipeline.rehearsal.faults import FaultRule
    from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig

    config = FakeLLMConfig(
        key=args.key,
        latency_ms=args.latency_ms,
        jitter=args.jitter,
        rpm=args.rpm,
        tpm=args.tpm,
        burst=args.burst,
        seed=args.seed,
        faults=[FaultRule.parse(spec) for spec in args.fault],
    )
    try:
        server = FakeLLM(config, args.host, args.port)
    except OSError as exc:
        raise BadInputError(f"fake-llm: cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    signal.signal(signal.SIGTERM, lambda *_: server.httpd.shutdown())
    print(f"fake-llm: OpenAI-compatible API at {server.url}  (OPENAI_BASE_URL={server.url})", flush=True)
    for rule in config.faults:
        print(f"fake-llm: fault {rule.describe()}", flush=True)
    print(f"fake-llm: stats at {server.url}/_fake/stats; new faults: POST {server.url}/_fake/faults", flush=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        while serving.is_alive():
            serving.join(0.5)
    except KeyboardInterrupt:
        server.httpd.shutdown()
        serving.join()
    print(f"fake-llm: stopped; {json.dumps(server.stats())}", flush=True)
    return 0


def _status(as_json: bool) -> int:
    from content_pipeline.ops.status import status

    settings = _settings()
    result = status(store_for(settings, read_only=True), settings.catalogue, settings.s3_options())
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _progress(as_json: bool) -> int:
    from content_pipeline.ops.progress import progress, progress_line

    settings = _settings()
    figures = progress(store_for(settings, read_only=True), settings.catalogue, settings.s3_options())
    print(json.dumps(figures, sort_keys=True) if as_json else progress_line(figures))
    return 0


def _health(as_json: bool) -> int:
    from content_pipeline.ops.health import health
    from flows.prefect_probe import prefect_check

    settings = _settings()
    api = configured_api_url()
    result = health(store_for(settings), settings, probes=[lambda: prefect_check(api)] if api else [])
    print(json.dumps(result.to_dict(), sort_keys=True) if as_json else "\n".join(result.lines()))
    return result.exit_code


def _backup(args: argparse.Namespace) -> int:
    from content_pipeline.ops.backup import backup, backups

    settings = _settings()
    if args.list:
        source = open_store(args.source, **settings.s3_options()) if args.source else store_for(settings)
        for entry in backups(source):
            print(json.dumps(entry, sort_keys=True))
        return 0
    done = backup(store_for(settings), open_store(args.to, **settings.s3_options()))
    print(
        f"backup {done['id']}: {done['copied']} object(s) copied ({done['copied_bytes']} bytes, each checked by "
        f"sha256), {done['unchanged']} unchanged, to {done['to']}"
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from content_pipeline.ops.restore import restore, restore_from, restore_from_backup
    from content_pipeline.views.kept import kept_snapshots

    settings = _settings()
    store = store_for(settings)
    if args.list:
        kept = kept_snapshots(store)
        print("\n".join(k.line() for k in kept) if kept else "restore: no view snapshot is kept")
        return 0
    if args.snapshot:
        result = restore_from(store, settings, args.snapshot)
    elif args.from_backup:
        result = restore_from_backup(store, open_store(args.from_backup, **settings.s3_options()), settings)
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

    settings = _settings()
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

    settings = _settings()
    store = store_for(settings)
    ranking = rank_templates(store, args.period)
    if not store.read_only:
        decide(store, ranking, args.apply)
    print(json.dumps(ranking.to_dict(), sort_keys=True) if args.json else "\n".join(ranking.lines()))
    return 0


def _templates(add: str | None) -> int:
    from pydantic import ValidationError

    from content_pipeline.generation.templates import PromptTemplate, read_active, save_template, stored_templates
    from content_pipeline.generation.templates import write_active as activate

    store = store_for(_settings())
    if add is not None:
        try:
            template = PromptTemplate.model_validate_json(Path(add).read_bytes())
        except OSError as exc:
            raise BadInputError(f"templates --add {add}: {exc.strerror}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            raise BadInputError(
                f"templates --add {add}: {'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}"
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


def _quarantine(as_json: bool, which: str | None) -> int:
    from content_pipeline.ops.quarantine import accept, quarantined

    settings = _settings()
    if which is not None:
        for record in accept(store_for(settings), which):
            print(f"quarantine: loss accepted: {record.where} (slug {record.slug or 'unreadable'})")
        return 0
    found = quarantined(store_for(settings, read_only=True))
    for record in found:
        if as_json:
            fields = {"where": record.where, "what": record.what, "slug": record.slug, "kept": record.kept}
            print(json.dumps({**fields, "accepted": record.accepted}, sort_keys=True))
        else:
            print(record.line())
    if not found and not as_json:
        print("quarantine: no damaged ledger records")
    return 0


def _view(name: str) -> int:
    from content_pipeline.views.snapshot import stream_view

    if not stream_view(store_for(_settings(), read_only=True), name, sys.stdout.buffer):
        print("error: no views are published yet: run `content-pipeline consolidate` (or go-live)", file=sys.stderr)
        return 1
    return 0


def _mode(args: argparse.Namespace) -> str | None:
    return "prefect" if getattr(args, "prefect", False) else ("direct" if getattr(args, "direct", False) else None)


def _run(args: argparse.Namespace) -> int:
    """A run or stage command: the core directly, or its Prefect flow when a Prefect API is configured
    (or RUN_MODE / --prefect asks for one), so the run shows in a UI exactly when there is one."""
    if args.command in RUN_COMMANDS:
        flags = {"scope": args.scope, "limit": args.limit, "budget_usd": args.budget_usd, "run_id": args.run_id}
        settings = _settings(**flags, run_mode=_mode(args)).with_run_id()
    else:
        settings = _settings(run_mode=_mode(args), evidence_only=getattr(args, "dry_run", None) or None)
    window = _window(args)
    configured = configured_api_url()
    if settings.run_mode == "prefect" or (settings.run_mode == "auto" and configured is not None):
        return _via_flow(args.command, settings, temporary=configured is None, window=window)
    from content_pipeline.run.commands import run_command  # the run's modules: not for status, view, fake-llm
    from content_pipeline.run.reporter import PlainReporter, log_to_stderr

    log_to_stderr()
    outcome = run_command(args.command, settings, store_for(settings), PlainReporter(), window)
    return _show(args.command, settings, outcome.ok, outcome.message, outcome.report)


def _window(args: argparse.Namespace) -> ReplayWindow | None:
    """replay-failed's window, checked as the flow's form checks it."""
    if args.command != "replay-failed":
        return None
    from content_pipeline.ops.replay import ReplayWindow

    if not 0 < args.since_hours <= MAX_REPLAY_HOURS:
        raise BadInputError(
            f"--since-hours {args.since_hours:g}: give a window of more than 0 and at most {MAX_REPLAY_HOURS} hours"
        )
    return ReplayWindow(args.since_hours, args.include_qa)


def _via_flow(command: str, settings: Settings, temporary: bool, window: ReplayWindow | None = None) -> int:
    """The command's flow; with `temporary`, on a Prefect server of this run's own that dies with it."""
    from flows.temporary_server import temporary_server

    with temporary_server() if temporary else nullcontext(None) as url:
        if url is not None:
            os.environ["PREFECT_API_URL"] = url  # before Prefect is imported: its settings are read once
        from flows.pipeline import FLOWS  # Prefect is imported only for the commands that run a flow

        params: dict[str, object] = {}
        if command in RUN_COMMANDS:
            params = {"scope": settings.scope, "limit": settings.limit, "budget_usd": settings.budget_usd}
            params["run_id"] = settings.run_id
        if command == "sweep":
            params = {"dry_run": settings.evidence_only}
        if window is not None:
            params.update(since_hours=window.since_hours, include_qa=window.include_qa)
        state = FLOWS[command](**params, return_state=True)  # type: ignore[operator]
    report = None
    if command in WHOLE_RUNS and settings.run_id:
        stored = store_for(settings, read_only=True).get(layout.run_key(settings.run_id, layout.REPORT))
        report = stored.decode() if stored else None
    return _show(command, settings, state.is_completed(), state.message or state.name, report)


def _show(command: str, settings: Settings, ok: bool, message: str, report: RunReport | str | None) -> int:
    """The report (go-live) on stdout, then the outcome: one line, or one line per failure on stderr."""
    if report is not None:
        print(report if isinstance(report, str) else report.markdown())
    if ok:
        named = f" (run id {settings.run_id})" if command in RUN_COMMANDS and command not in WHOLE_RUNS else ""
        print(f"{command}: {message}{named}")
        return 0
    for line in message.splitlines():
        print(f"{command} failed: {line}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "status":
            return _status(args.json)
        if args.command == "progress":
            return _progress(args.json)
        if args.command == "health":
            return _health(args.json)
        if args.command == "backup":
            return _backup(args)
        if args.command == "restore":
            return _restore(args)
        if args.command == "report":
            return _report(args)
        if args.command == "template-rank":
            return _template_rank(args)
        if args.command == "templates":
            return _templates(args.add)
        if args.command == "view":
            return _view(args.view)
        if args.command == "quarantine":
            return _quarantine(args.json, args.accept_loss)
        if args.command == "fake-llm":
            return _fake_llm(args)
        return _run(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # the run's claims and lease were released on the way out; its ledger is whole
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
