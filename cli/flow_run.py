"""A command run from the terminal as its Prefect flow (on a temporary server of its own when no API is
configured), its outcome shown as the terminal shows any: a run's report, then its line."""

from __future__ import annotations

import os
from contextlib import nullcontext

from cli.render import show
from cli.temporary_server import drain_to_api, temporary_server
from content_pipeline.commands.catalogue import Command
from content_pipeline.commands.params import Params, RunParams
from content_pipeline.commands.runs import ended
from content_pipeline.run import WHOLE_RUNS
from content_pipeline.store import layout, store_for
from flows.resolve import EdgeSettings


def via_flow(command: Command, params: Params, settings: EdgeSettings, temporary: bool) -> int:
    """Run `command`'s flow with `params`; with `temporary`, on a Prefect server that dies with this run."""
    with temporary_server() if temporary else nullcontext(None) as url:
        if url is not None:
            os.environ["PREFECT_API_URL"] = url  # before Prefect is imported: its settings are read once
        from cli.console import console_for_flows
        from flows.pipeline import FLOWS  # Prefect is imported only for the commands that run a flow

        console_for_flows(settings.log_level)
        state = FLOWS[command.name](**params.model_dump(), return_state=True)  # type: ignore[operator]
        if url is not None:
            drain_to_api()  # the run's last logs and events reach the server before it stops
    report = None
    if command.name in WHOLE_RUNS and settings.run_id:
        stored = store_for(settings, read_only=True).get(layout.run_key(settings.run_id, layout.REPORT))
        report = stored.decode() if stored else None
    if report is not None:
        print(report)
    named = settings.run_id if isinstance(params, RunParams) else None  # a stage by hand names its run
    return show(ended(command.name, named, state.is_completed(), state.message or state.name))
