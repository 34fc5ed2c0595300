"""The run commands (go-live, replay-failed) and the stages run by hand, as catalogue commands."""

from __future__ import annotations

from content_pipeline.commands.context import Context
from content_pipeline.commands.outcome import Line, Outcome
from content_pipeline.commands.params import Params, ReplayParams, RunParams
from content_pipeline.ops.replay import ReplayWindow
from content_pipeline.run import WHOLE_RUNS
from content_pipeline.run.commands import run_command
from content_pipeline.run.report import RunReport


def ended(name: str, run_id: str | None, ok: bool, message: str, report: RunReport | None = None) -> Outcome:
    """A run's outcome as the terminal shows it: the summary line (naming the run id of a stage run by
    hand), or one line per failure on stderr."""
    if ok:
        named = f" (run id {run_id})" if run_id and name not in WHOLE_RUNS else ""
        lines: tuple[Line, ...] = (Line(f"{name}: {message}{named}"),)
    else:
        lines = tuple(Line(f"{name} failed: {line}", "error", err=True) for line in message.splitlines())
    return Outcome(ok, message, lines, report=report)


def run_stage(ctx: Context, params: Params) -> Outcome:
    """Run the command the context names (go-live, replay-failed or a stage) on the context's settings."""
    window = ReplayWindow(params.since_hours, params.include_qa) if isinstance(params, ReplayParams) else None
    settings, name = ctx.settings, ctx.command
    done = run_command(name, settings, ctx.store(), ctx.reporter, window, ctx.publishing)
    named = settings.run_id if isinstance(params, RunParams) else None  # a stage by hand names its run
    return ended(name, named, done.ok, done.message, done.report)
