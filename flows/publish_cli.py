"""The publishing subcommands: `publish [--target NAME] [--max-posts N] [--dry-run]` (its flow when a Prefect
API is configured), `publish halt --reason TEXT`, `publish resume`, and `quarantine SLUG --reason TEXT
[--trash]` / `quarantine release SLUG` (the item-level part of the quarantine command)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from content_pipeline.errors import BadInputError
from content_pipeline.settings import Settings
from content_pipeline.store import Store, store_for
from flows.ops_cli import settings_for_command
from flows.prefect_api import configured_api_url

ViaFlow = Callable[[str, Settings, bool, Any, dict[str, object]], int]  # cli._via_flow
PUBLISH_HELP = "publish consolidated successes to a target, simulated unless governance says live; halt, resume"


def publish_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("action", nargs="?", choices=["halt", "resume"], help="halt or resume publishing everywhere")
    cmd.add_argument("--reason", metavar="TEXT", help="with halt: why (shown by every publish until resume)")
    cmd.add_argument("--target", metavar="NAME", help="wordpress, webhook or a target block's name (PUBLISH_TARGET)")
    cmd.add_argument("--max-posts", type=int, metavar="N", help="most posts this run sends (PUBLISH_MAX_POSTS)")
    cmd.add_argument("--dry-run", action="store_true", help="show the plan and the decision; send nothing")
    cmd.add_argument("--run-id", metavar="ID", help="run id of the attempt log's part (made unique when not given)")


def quarantine_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "item", nargs="*", metavar="SLUG", help="SLUG: take its post down and hold it; `release SLUG`: let it go"
    )
    cmd.add_argument("--reason", metavar="TEXT", help="with SLUG: why it comes down (recorded)")
    cmd.add_argument("--trash", action="store_true", help="with SLUG: trash the post instead of turning it to draft")
    cmd.add_argument("--target", metavar="NAME", help="with SLUG: the target its post is on (PUBLISH_TARGET)")


def publish(args: argparse.Namespace, mode: str | None, via_flow: ViaFlow) -> int:
    """`publish`: halt and resume here; a publish run as its flow when a Prefect API is configured (or
    --prefect), else in this process."""
    from content_pipeline.publish.halt import halt, halted, resume
    from content_pipeline.publish.log import operator

    if args.max_posts is not None and not 1 <= args.max_posts <= 10000:
        raise BadInputError(f"--max-posts {args.max_posts}: give 1 to 10000")
    flags = {"publish_target": args.target, "publish_max_posts": args.max_posts, "run_id": args.run_id}
    settings = settings_for_command(**flags, run_mode=mode).with_run_id()
    store = store_for(settings)
    if args.action == "halt":
        halt(store, args.reason or "", operator())
        print(f"publish: halted everywhere: {halted(store)}; `content-pipeline publish resume` lifts it")
        return 0
    if args.action == "resume":
        print("publish: resumed" if resume(store) else "publish: was not halted")
        return 0
    configured = configured_api_url()
    if settings.run_mode == "prefect" or (settings.run_mode == "auto" and configured is not None):
        return via_flow("publish", settings, configured is None, None, {"dry_run": args.dry_run})
    return _publish_here(settings, store, configured, args.dry_run)


def _publish_here(settings: Settings, store: Store, api_url: str | None, dry_run: bool) -> int:
    from content_pipeline.publish.command import publish_command
    from flows.publishing import EdgePublishing

    assert settings.run_id is not None
    publishing = EdgePublishing(settings, api_url, in_flow=False)
    target = publishing.require(settings.publish_target)
    try:
        result = publish_command(store, settings, target, settings.run_id, publishing, dry_run=dry_run)
    finally:
        target.close()
    for line in result.lines()[:-1] if result.stopped else result.lines():
        print(f"publish: {line}")
    if result.stopped:
        print(f"publish stopped: {result.stopped}", file=sys.stderr)
    return 0 if result.ok else 1


def quarantine_item(args: argparse.Namespace) -> int:
    """`quarantine SLUG --reason TEXT [--trash]` takes the post down and holds the item; `quarantine release
    SLUG` lets it be published again."""
    from content_pipeline.publish.command import GuardedTarget, publish_lease
    from content_pipeline.publish.history import read_history
    from content_pipeline.publish.log import AttemptLog, operator
    from content_pipeline.publish.quarantine import quarantine, release
    from flows.publishing import EdgePublishing

    words = list(args.item)
    settings = settings_for_command(publish_target=args.target).with_run_id()
    store = store_for(settings)
    assert settings.run_id is not None
    if words[0] == "release" and len(words) == 2:
        with AttemptLog(store, settings.run_id) as log:
            print(release(store, log, words[1], operator()))
        return 0
    if len(words) != 1:
        raise BadInputError("quarantine: give one SLUG (with --reason), or `release SLUG`")
    target = EdgePublishing(settings, configured_api_url(), in_flow=False).require(settings.publish_target)
    try:
        with (
            publish_lease(store, settings, target.name, settings.run_id) as lease,
            AttemptLog(store, settings.run_id, guard=lambda: lease.check(f"quarantining {words[0]}")) as log,
        ):
            history = read_history(store)  # read under the lease: no publish run sends it meanwhile
            guarded = GuardedTarget(target, lease)  # a take-down after the lease was lost is not sent
            line = quarantine(store, log, guarded, history, words[0], args.reason or "", operator(), args.trash)
    finally:
        target.close()
    print(line)
    return 0
