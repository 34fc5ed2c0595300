"""The `content-pipeline` command: each stage runs its Prefect flow; `status` only reads the store."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable

from content_pipeline import layout
from content_pipeline.errors import BadInputError, PipelineError
from content_pipeline.settings import load_settings, new_run_id
from content_pipeline.store import store_for

STAGES = ("go-live", "inventory", "batch", "preflight", "generate")
MAINTENANCE = ("consolidate", "audit", "sync")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="content-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "go-live": "the whole run: inventory, batch, preflight, generate, consolidate, audit, sync, audit",
        "inventory": "read the catalogue: which items need content",
        "batch": "claim up to --limit items of the run's inventory",
        "preflight": "filter the run's batch; refuse when the budget is too low",
        "generate": "generate the run's batch with the LLM",
        "consolidate": "rebuild master, indexes, usage and checkpoint from the ledger",
        "audit": "check every invariant; non-zero exit on a violation",
        "sync": "rewrite the checkpoint from master",
        "status": "counts from the store (read-only, quick)",
        "view": "print one current master view (read-only)",
        "fake-llm": "a local OpenAI-compatible server to rehearse a run (fake-llm serve)",
    }
    for name in (*STAGES, *MAINTENANCE, "status", "view", "fake-llm"):
        cmd = sub.add_parser(name, help=helps[name], description=helps[name])
        if name in STAGES:
            cmd.add_argument("--scope", choices=["all", "promo"], help="all items, or promo items only (SCOPE)")
            cmd.add_argument("--limit", type=int, metavar="N", help="most items to claim (LIMIT)")
            cmd.add_argument("--budget-usd", type=float, metavar="X", help="hard spend ceiling, USD (BUDGET_USD)")
            cmd.add_argument("--run-id", metavar="ID", help="run id (RUN_ID); made unique when not given")
        if name == "status":
            cmd.add_argument("--json", action="store_true", help="print one JSON object")
        if name == "view":
            cmd.add_argument("view", choices=list(layout.VIEW_FILES), help="which view")
        if name == "fake-llm":
            _fake_llm_arguments(cmd)
    return parser


def _fake_llm_arguments(cmd: argparse.ArgumentParser) -> None:
    from content_pipeline.fake_llm import FAULTS

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


def _fake_llm(args: argparse.Namespace) -> int:
    import signal

    from content_pipeline.fake_llm import FakeLLM, FakeLLMConfig, FaultRule

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


def _flow(name: str) -> Callable[..., object]:
    from flows import pipeline  # Prefect is imported only for the commands that run a flow

    return {
        "go-live": pipeline.go_live,
        "inventory": pipeline.inventory_flow,
        "batch": pipeline.batch_flow,
        "preflight": pipeline.preflight_flow,
        "generate": pipeline.generate_flow,
        "consolidate": pipeline.consolidate_flow,
        "audit": pipeline.audit_flow,
        "sync": pipeline.sync_flow,
    }[name]


def _status(as_json: bool) -> int:
    from content_pipeline.status import status

    settings = load_settings()
    result = status(store_for(settings, read_only=True), settings.catalogue, settings.s3_options())
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _view(name: str) -> int:
    from content_pipeline.views import stream_view

    if not stream_view(store_for(load_settings(), read_only=True), name, sys.stdout.buffer):
        print("error: no views are published yet: run `content-pipeline consolidate` (or go-live)", file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    params: dict[str, object] = {}
    if args.command in STAGES:
        settings = load_settings(scope=args.scope, limit=args.limit, budget_usd=args.budget_usd, run_id=args.run_id)
        params = {"scope": settings.scope, "limit": settings.limit, "budget_usd": settings.budget_usd}
        params["run_id"] = settings.run_id or new_run_id()
    else:
        settings = load_settings()
    state = _flow(args.command)(**params, return_state=True)  # type: ignore[operator]
    run_id = params.get("run_id")
    if args.command == "go-live" and run_id:
        report = store_for(settings, read_only=True).get(layout.run_key(str(run_id), "report.md"))
        if report:
            print(report.decode())
    message = state.message or state.name
    if state.is_completed():
        print(f"{args.command}: {message}" + (f" (run id {run_id})" if run_id and args.command != "go-live" else ""))
        return 0
    for line in message.splitlines():
        print(f"{args.command} failed: {line}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "status":
            return _status(args.json)
        if args.command == "view":
            return _view(args.view)
        if args.command == "fake-llm":
            return _fake_llm(args)
        return _run(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
