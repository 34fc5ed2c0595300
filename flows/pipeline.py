"""The Prefect flows: one per catalogue command that has one, made from the command's parameter model (the
form's fields, bounds and descriptions) and run through the same core function as the terminal's."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from prefect import Flow, flow
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from content_pipeline.commands.catalogue import CATALOGUE, Command
from content_pipeline.commands.context import Context
from content_pipeline.errors import PipelineError
from content_pipeline.money import usd
from content_pipeline.store import store_for
from flows.engagement import EdgeSources
from flows.prefect_probe import prefect_probes
from flows.publishing import EdgePublishing
from flows.quiet import install as quiet_expected_failures
from flows.resolve import flow_settings
from tasks.outcome import show_outcome
from tasks.reporter import PrefectReporter

CHUNK_THREADS = 64  # threads of the task runner that runs generation chunks' task runs
quiet_expected_failures()  # a run that fails with its one line logs no engine traceback for it


def run_flow(command: Command, values: dict[str, Any]) -> State:
    """`command` on its parameters in this flow run: Completed with its summary, or Failed with the one-line
    reason (a settings or store problem before anything ran: `start: ...` with the spend so far)."""
    params = command.params(**values)
    try:
        settings = flow_settings(**params.overrides(given_only=False)).with_run_id()
        store_for(settings)  # a store that cannot be opened: one line before anything runs
    except PipelineError as exc:  # bad settings, a store that cannot be opened: one line, as the CLI says it
        budget = values.get("budget_usd")
        spent = f"spent $0.00 of {usd(budget)}" if isinstance(budget, (int, float)) else "nothing spent"
        return Failed(message=f"start: {exc} ({spent})")
    assert settings.run_id is not None
    api = PREFECT_API_URL.value()
    publishing = EdgePublishing(settings, api, in_flow=True)
    reporter = PrefectReporter(settings.run_id)
    sources = EdgeSources(settings, api)
    context = Context(command.name, settings, reporter, publishing, prefect_probes(api), sources)
    try:
        outcome = command.fn(context, params)
    except PipelineError as exc:  # its line names the command already, or is given its name
        said = str(exc)
        return Failed(message=said if said.startswith(f"{command.name}") else f"{command.name}: {said}")
    show_outcome(outcome)
    return Completed(message=outcome.summary) if outcome.ok else Failed(message=outcome.summary)


def _signature(command: Command) -> tuple[inspect.Signature, dict[str, Any]]:
    """The flow's signature (keyword-only, as its form sends them) and annotations, from the model."""
    params, hints = [], {}
    for name, field in command.params.model_fields.items():
        hint = Annotated[field.annotation, *field.metadata, Field(description=field.description)]
        default = inspect.Parameter.empty if field.is_required() else field.default
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))
        hints[name] = hint
    return inspect.Signature(params, return_annotation=State), {**hints, "return": State}


def command_flow(name: str, attribute: str) -> Flow[..., State]:
    """The flow of the catalogue command `name`, as this module's `attribute` (a deployment's entrypoint)."""
    command = CATALOGUE[name]

    def body(**values: Any) -> State:
        return run_flow(command, values)

    body.__signature__, body.__annotations__ = _signature(command)  # type: ignore[attr-defined]
    body.__name__ = body.__qualname__ = attribute
    args = [f"    {n}: {f.description}" for n, f in command.params.model_fields.items() if f.description]
    body.__doc__ = command.doc + ("\n\nArgs:\n" + "\n".join(args) + "\n" if args else "")
    runner = ThreadPoolTaskRunner(max_workers=CHUNK_THREADS) if command.threads else None
    return flow(name=command.flow or name, task_runner=runner)(body)  # type: ignore[arg-type]


go_live = command_flow("go-live", "go_live")
replay_failed_flow = command_flow("replay-failed", "replay_failed_flow")
inventory_flow = command_flow("inventory", "inventory_flow")
batch_flow = command_flow("batch", "batch_flow")
preflight_flow = command_flow("preflight", "preflight_flow")
generate_flow = command_flow("generate", "generate_flow")
consolidate_flow = command_flow("consolidate", "consolidate_flow")
audit_flow = command_flow("audit", "audit_flow")
sync_flow = command_flow("sync", "sync_flow")
sweep_flow = command_flow("sweep", "sweep_flow")
collect_flow = command_flow("collect", "collect_flow")
publish_flow = command_flow("publish", "publish_flow")
progress_flow = command_flow("progress", "progress_flow")
health_flow = command_flow("health", "health_flow")
report_flow = command_flow("report", "report_flow")
template_rank_flow = command_flow("template-rank", "template_rank_flow")
backup_flow = command_flow("backup", "backup_flow")
restore_flow = command_flow("restore", "restore_flow")
publish_watch_flow = command_flow("publish watch", "publish_watch_flow")
engagement_pull_flow = command_flow("engagement pull", "engagement_pull_flow")
engagement_drops_flow = command_flow("engagement drops", "engagement_drops_flow")
FLOWS: dict[str, Flow[..., State]] = {f.name: f for f in globals().values() if isinstance(f, Flow)}
