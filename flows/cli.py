"""The `content-pipeline` command: go-live, replay-failed, publish and each stage run the core directly, or as their
Prefect flow when a Prefect API is configured; the operations (status, health, backup, restore, report and
the rest: flows/ops_cli.py) run here on the store the flows use; fake-llm rehearses a provider."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from contextlib import nullcontext
from typing import TYPE_CHECKING, get_args

from content_pipeline.errors import BadInputError, PipelineError
from content_pipeline.run import WHOLE_RUNS
from content_pipeline.settings import MAX_REPLAY_HOURS, GenerationMode, Scope, Settings
from content_pipeline.store import layout, store_for
from flows.ops_cli import HANDLERS, OPS_HELP, ops_arguments, settings_for_command
from flows.prefect_api import configured_api_url
from flows.publish_cli import PUBLISH_HELP, publish, publish_arguments

if TYPE_CHECKING:
    from content_pipeline.ops.replay import ReplayWindow
    from content_pipeline.run.report import RunReport

RUN_COMMANDS = ("go-live", "replay-failed", "inventory", "batch", "preflight", "generate")  # those with a run id
MAINTENANCE = ("consolidate", "audit", "sync", "sweep", "collect")
MODE_COMMANDS = ("go-live", "replay-failed", "generate")  # those that generate: sync calls or the Batch API


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
        "collect": "settle the finished Batch API batches into the ledger; show those still running",
        "fake-llm": "a local OpenAI-compatible server to rehearse a run (fake-llm serve)",
        "publish": PUBLISH_HELP,
        **OPS_HELP,
    }
    for name in (*RUN_COMMANDS, *MAINTENANCE, "publish", *HANDLERS, "fake-llm"):
        cmd = sub.add_parser(name, help=helps[name], description=helps[name])
        if name in (*RUN_COMMANDS, *MAINTENANCE, "publish"):
            _mode_arguments(cmd)
        if name == "publish":
            publish_arguments(cmd)
        if name in RUN_COMMANDS:
            cmd.add_argument(
                "--scope",
                choices=get_args(Scope),
                help="all items, promo items only, or only the items changed since their success (SCOPE)",
            )
            cmd.add_argument("--limit", type=int, metavar="N", help="most items to claim (LIMIT)")
            cmd.add_argument("--budget-usd", type=float, metavar="X", help="hard spend ceiling, USD (BUDGET_USD)")
            cmd.add_argument("--run-id", metavar="ID", help="run id (RUN_ID); made unique when not given")
        if name in MODE_COMMANDS:
            cmd.add_argument(
                "--mode", choices=get_args(GenerationMode), help="sync calls, or the Batch API (GENERATION_MODE)"
            )
        if name == "replay-failed":
            cmd.add_argument("--since-hours", type=float, required=True, metavar="N", help="the window: last N hours")
            cmd.add_argument("--include-qa", action="store_true", help="QA and content-policy rejects too")
        if name == "sweep":
            cmd.add_argument("--dry-run", action="store_true", help="name what would be released; release nothing")
        if name == "fake-llm":
            _fake_llm_arguments(cmd)
        if name in HANDLERS:
            ops_arguments(name, cmd)
    return parser


def _mode_arguments(cmd: argparse.ArgumentParser) -> None:
    mode = cmd.add_mutually_exclusive_group()
    mode.add_argument(
        "--prefect",
        action="store_true",
        help="run it as a Prefect flow even when no Prefect API is configured (a temporary server) (RUN_MODE)",
    )
    mode.add_argument("--direct", action="store_true", help="run the core directly even when one is (RUN_MODE)")


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
        "--cache-min-tokens",
        type=int,
        default=1024,
        help="a prompt's fixed part this long is served from the prompt cache once seen (default 1024)",
    )
    cmd.add_argument("--batch-delay-s", type=float, default=0.0, help="a batch ends this long after it is created")
    cmd.add_argument(
        "--batch-expire-share", type=float, default=0.0, help="share of a batch's requests left unrun (it expires)"
    )
    cmd.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:RATE][@TEXT][*TIMES]",
        help="a fault on demand (repeatable); KIND: " + ", ".join(FAULTS),
    )


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
        cache_min_tokens=args.cache_min_tokens,
        batch_delay_s=args.batch_delay_s,
        batch_expire_share=args.batch_expire_share,
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


def _mode(args: argparse.Namespace) -> str | None:
    return "prefect" if getattr(args, "prefect", False) else ("direct" if getattr(args, "direct", False) else None)


def _run(args: argparse.Namespace) -> int:
    """A run or stage command: the core directly, or its Prefect flow when a Prefect API is configured
    (or RUN_MODE / --prefect asks for one), so the run shows in a UI exactly when there is one."""
    if args.command in RUN_COMMANDS:
        flags = {"scope": args.scope, "limit": args.limit, "budget_usd": args.budget_usd, "run_id": args.run_id}
        flags["generation_mode"] = getattr(args, "mode", None)
        settings = settings_for_command(**flags, run_mode=_mode(args)).with_run_id()
    else:
        settings = settings_for_command(run_mode=_mode(args), evidence_only=getattr(args, "dry_run", None) or None)
    window = _window(args)
    configured = configured_api_url()
    store = store_for(settings)  # a bad STORE_URL, bucket or endpoint: one line now, before Prefect starts
    if settings.run_mode == "prefect" or (settings.run_mode == "auto" and configured is not None):
        return _via_flow(args.command, settings, temporary=configured is None, window=window)
    from content_pipeline.run.commands import run_command  # the run's modules: not for status, view, fake-llm
    from content_pipeline.run.reporter import PlainReporter, log_to_stderr
    from flows.publishing import EdgePublishing

    log_to_stderr(logging.getLevelName(settings.log_level))
    publishing = EdgePublishing(settings, configured, in_flow=False)
    outcome = run_command(args.command, settings, store, PlainReporter(), window, publishing)
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


def _via_flow(
    command: str,
    settings: Settings,
    temporary: bool,
    window: ReplayWindow | None = None,
    extra: dict[str, object] | None = None,
) -> int:
    """The command's flow; with `temporary`, on a Prefect server of this run's own that dies with it."""
    from flows.temporary_server import drain_to_api, temporary_server

    with temporary_server() if temporary else nullcontext(None) as url:
        if url is not None:
            os.environ["PREFECT_API_URL"] = url  # before Prefect is imported: its settings are read once
        from flows.console import console_for_flows
        from flows.pipeline import FLOWS  # Prefect is imported only for the commands that run a flow

        console_for_flows(settings.log_level)

        params: dict[str, object] = {}
        if command in RUN_COMMANDS:
            params = {"scope": settings.scope, "limit": settings.limit, "budget_usd": settings.budget_usd}
            params["run_id"] = settings.run_id
        if command in MODE_COMMANDS:
            params["mode"] = settings.generation_mode
        if command == "sweep":
            params = {"dry_run": settings.evidence_only}
        if window is not None:
            params.update(since_hours=window.since_hours, include_qa=window.include_qa)
        if command == "publish":
            params = {"target": settings.publish_target, "max_posts": settings.publish_max_posts}
            params["run_id"] = settings.run_id
        params.update(extra or {})
        state = FLOWS[command](**params, return_state=True)  # type: ignore[operator]
        if url is not None:
            drain_to_api()  # the run's last logs and events reach the server before it stops
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
        if args.command in HANDLERS:
            return HANDLERS[args.command](args)
        if args.command == "fake-llm":
            return _fake_llm(args)
        if args.command == "publish":
            return publish(args, _mode(args), _via_flow)
        return _run(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # the run's claims and lease were released on the way out; its ledger is whole
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
