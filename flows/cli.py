"""The `content-pipeline` command: each stage runs its Prefect flow; `status` only reads the store."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from content_pipeline import layout
from content_pipeline.errors import PipelineError
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
    }
    for name in (*STAGES, *MAINTENANCE, "status", "view"):
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
    return parser


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
    result = status(store_for(settings, read_only=True), settings.catalogue)
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _view(name: str) -> int:
    from content_pipeline.views import read_view

    data = read_view(store_for(load_settings(), read_only=True), name)
    if data is None:
        print("error: no views are published yet: run `content-pipeline consolidate` (or go-live)", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(data)
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
        return _run(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
