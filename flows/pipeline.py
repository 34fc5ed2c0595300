"""The Prefect flows: go-live and each stage on its own. Thin: settings and blocks at the edge, the core's
run through the Prefect reporter (each stage a task run, artifacts, run logs), its outcome as the state."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from prefect import flow
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from content_pipeline.errors import PipelineError
from content_pipeline.money import usd
from content_pipeline.ops.backup import backup, open_target
from content_pipeline.ops.health import health
from content_pipeline.ops.kpis import Period
from content_pipeline.ops.progress import progress, progress_line
from content_pipeline.ops.replay import ReplayWindow
from content_pipeline.ops.reports import Kind, build_report, write_report
from content_pipeline.ops.restore import restore
from content_pipeline.ops.template_rank import decide, rank_templates
from content_pipeline.publish.command import publish_command
from content_pipeline.run.commands import run_command
from content_pipeline.settings import (
    MAX_BUDGET_USD,
    MAX_LIMIT,
    MAX_REPLAY_HOURS,
    RUN_ID_PATTERN,
    Scope,
    Settings,
    load_settings,
)
from content_pipeline.store import Store, store_for
from flows.described import described
from flows.prefect_probe import prefect_probes
from flows.publishing import EdgePublishing
from flows.quiet import install as quiet_expected_failures
from flows.resolve import block_overrides
from tasks.ops import publish_health, publish_lines, publish_outcome, publish_ranking, publish_report
from tasks.reporter import PrefectReporter

_DEFAULT = {name: field.default for name, field in Settings.model_fields.items()}
ScopeParam = Annotated[
    Scope,
    Field(description="all: every item; promo: promo items only; changed: only items changed since their success"),
]
LimitParam = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Most items this run claims")]
BudgetParam = Annotated[
    float, Field(gt=0, le=MAX_BUDGET_USD, allow_inf_nan=False, description="Hard spend ceiling of this run, USD")
]
RunIdParam = Annotated[
    str | None,
    Field(pattern=RUN_ID_PATTERN.pattern, description="Run id; a unique one (UTC time + random) is made when empty"),
]
ModeChoice = Literal["default", "sync", "batch"]  # a choice in the UI's form (an optional string is a free text)
ModeParam = Annotated[
    ModeChoice,
    Field(
        description="sync: calls now; batch: the Batch API at half price, settled by collect; default: GENERATION_MODE"
    ),
]
CHUNK_THREADS = 64  # threads of the task runner that runs generation chunks' task runs
quiet_expected_failures()  # a run that fails with its one line logs no engine traceback for it


def _mode(mode: ModeChoice) -> str | None:
    """The generation mode a flow's `mode` choice asks for (None: GENERATION_MODE's)."""
    return None if mode == "default" else mode


def _open(**params: Any) -> tuple[Settings, Store]:
    """Settings from the environment, then the blocks that exist, then the flow's parameters on top;
    and the store they name."""
    settings = load_settings(**{**block_overrides(load_settings()), **params}).with_run_id()
    return settings, store_for(settings)


def _run(command: str, replay: ReplayWindow | None = None, **params: Any) -> State:
    """The core's `command` on the resolved settings and store: Completed with its summary line, or Failed
    with the one-line reason (for go-live: the stage, the error and the spend so far). go-live and
    replay-failed end with the publish stage, its approver asked in this flow run."""
    try:
        settings, store = _open(**params)
    except PipelineError as exc:  # bad settings, a store that cannot be opened: one line, as the CLI says it
        budget = params.get("budget_usd")
        spent = f"spent $0.00 of {usd(budget)}" if isinstance(budget, (int, float)) else "nothing spent"
        return Failed(message=f"start: {exc} ({spent})")
    assert settings.run_id is not None
    publishing = EdgePublishing(settings, PREFECT_API_URL.value(), in_flow=True)
    outcome = run_command(command, settings, store, PrefectReporter(settings.run_id), replay, publishing)
    return Completed(message=outcome.message) if outcome.ok else Failed(message=outcome.message)


@flow(name="go-live", task_runner=ThreadPoolTaskRunner(max_workers=CHUNK_THREADS))
@described
def go_live(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
    mode: ModeParam = "default",
) -> State:
    """inventory, batch, preflight, generate, consolidate, audit, sync, audit; with a run report.
    A failure names the stage and the spend so far, for the notification that announces it."""
    return _run("go-live", scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id, generation_mode=_mode(mode))


@flow(name="replay-failed", task_runner=ThreadPoolTaskRunner(max_workers=CHUNK_THREADS))
@described
def replay_failed_flow(
    since_hours: Annotated[
        float, Field(gt=0, le=MAX_REPLAY_HOURS, description="The window: rejects of the last N hours")
    ] = 24.0,
    include_qa: Annotated[
        bool, Field(description="QA and content-policy rejects too, not only transient ones")
    ] = False,
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
    mode: ModeParam = "default",
) -> State:
    """The rejects of the window whose cause is transient (rate limit, timeout, server error, dropped
    connection, budget stop, quota), claimed again and generated under the budget; with include_qa, the QA
    and content-policy rejects too. A go-live run over exactly those items, with its report."""
    window = ReplayWindow(since_hours, include_qa)
    params = {
        "scope": scope,
        "limit": limit,
        "budget_usd": budget_usd,
        "run_id": run_id,
        "generation_mode": _mode(mode),
    }
    return _run("replay-failed", window, **params)


@flow(name="inventory")
@described
def inventory_flow(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
) -> State:
    """Which items need content; writes the run's needs-content and invalid-row reports."""
    return _run("inventory", scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)


@flow(name="batch")
@described
def batch_flow(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
) -> State:
    """Claim up to LIMIT of the run's inventory under the batch-builder lease (fails at once when held)."""
    return _run("batch", scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)


@flow(name="preflight")
@described
def preflight_flow(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
) -> State:
    """Filter the run's batch and apply the budget guard."""
    return _run("preflight", scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)


@flow(name="generate", task_runner=ThreadPoolTaskRunner(max_workers=CHUNK_THREADS))
@described
def generate_flow(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
    mode: ModeParam = "default",
) -> State:
    """Generate the run's preflighted batch, then release its claims."""
    return _run("generate", scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id, generation_mode=_mode(mode))


@flow(name="consolidate")
def consolidate_flow() -> State:
    """Rebuild master, indexes, usage and checkpoint from the ledger (idempotent); views changed by hand
    are written again."""
    return _run("consolidate")


@flow(name="audit")
def audit_flow() -> State:
    """Check every invariant; fails with one line per violation."""
    return _run("audit")


@flow(name="sync")
def sync_flow() -> State:
    """Rewrite the checkpoint from master."""
    return _run("sync")


@flow(name="sweep")
@described
def sweep_flow(
    dry_run: Annotated[bool, Field(description="Name what would be released; release nothing")] = False,
) -> State:
    """Release the leases and queued claims of runs that are gone (expired past SWEEP_GRACE_S, or whose
    process is gone from this host), naming each: their items need content again."""
    return _run("sweep", evidence_only=dry_run or None)


@flow(name="collect")
def collect_flow() -> State:
    """Poll the outstanding Batch API batches; settle the finished ones into the ledger (QA, escalations as
    BATCH_ESCALATE says, expired requests as retryable rejects), then consolidate, audit and sync."""
    return _run("collect")


@flow(name="publish")
@described
def publish_flow(
    target: Annotated[
        str | None, Field(description="wordpress, webhook, or a publish target block's name; PUBLISH_TARGET when empty")
    ] = None,
    max_posts: Annotated[int, Field(ge=1, le=10000, description="Most posts this run sends")] = _DEFAULT[
        "publish_max_posts"
    ],
    dry_run: Annotated[bool, Field(description="Show the plan and the governance decision; send nothing")] = False,
    run_id: RunIdParam = None,
) -> State:
    """Consolidated successes not yet live on the target, at most max_posts: live only when the three
    governance signals are truthy (or, with PUBLISH_APPROVAL=ui, an approver approves them in this run's
    form), simulated otherwise; each post once, looked up on the target before any create."""
    settings, store = _open(publish_target=target, publish_max_posts=max_posts, run_id=run_id)
    assert settings.run_id is not None
    publishing = EdgePublishing(settings, PREFECT_API_URL.value(), in_flow=True)
    try:
        chosen = publishing.require(settings.publish_target)
    except PipelineError as exc:
        return Failed(message=f"publish: {exc}")
    try:
        result = publish_command(store, settings, chosen, settings.run_id, publishing, dry_run=dry_run)
    finally:
        chosen.close()
    publish_outcome(result)
    lines = result.lines()
    return Completed(message="; ".join(lines)) if result.ok else Failed(message="; ".join(lines))


@flow(name="progress")
def progress_flow() -> State:
    """Remaining work, the share done, the last hour's rate and the time to finish."""
    settings, store = _open()
    figures = progress(store, settings.catalogue, settings.s3_options())
    return Completed(message=progress_line(figures))


@flow(name="health")
def health_flow() -> State:
    """Every health check, as a markdown artifact and log lines; the run fails on red (so the failure
    automation announces it), and completes on amber or green with the level and any faults."""
    settings, store = _open()
    result = health(store, settings, probes=prefect_probes(PREFECT_API_URL.value()))
    publish_health(result)
    summary = "; ".join(result.faults()) or "every check green"
    if result.level == "red":
        return Failed(message=f"health red: {summary}")
    return Completed(message=f"health {result.level}: {summary}")


@flow(name="report")
@described
def report_flow(
    kind: Annotated[Kind, Field(description="kpi: outcomes and rates; cost: spend and tokens")] = "kpi",
    period: Annotated[Period, Field(description="The period, against the one before it")] = "daily",
) -> State:
    """A KPI or cost report of the period against the prior one: markdown and table artifacts, and the
    report with its PNG charts in the store."""
    _, store = _open()
    report = build_report(store, kind, period)
    write_report(store, report)
    publish_report(report, store.url)
    return Completed(message=f"{report.title()}: stored in {store.url}/{report.files['markdown']}")


@flow(name="template-rank")
@described
def template_rank_flow(
    period: Annotated[Period, Field(description="The period whose outcomes rank the templates")] = "30d",
    apply: Annotated[
        bool, Field(description="Retire the bottom 20% and promote the top 20% of the active set")
    ] = False,
) -> State:
    """Rank the prompt templates by QA pass rate and cost per success, with sample sizes and a significance
    note; record the decision with its evidence, and with apply change the active set."""
    _, store = _open()
    ranking = decide(store, rank_templates(store, period), apply)
    publish_ranking(ranking)
    return Completed(message="; ".join(ranking.lines()[-2:]))  # applied or not, and where it is recorded


@flow(name="backup")
@described
def backup_flow(
    to: Annotated[
        str | None, Field(description="The backup store (a folder or s3://bucket/prefix); BACKUP_URL when empty")
    ] = None,
) -> State:
    """Copy the ledger and the view snapshots to the backup store, incrementally, each copy checked by its
    sha256; the backup is recorded in both stores."""
    settings, store = _open()
    target = to or settings.backup_url
    if not target:
        return Failed(message="backup: no target: set BACKUP_URL or give the `to` parameter")
    try:
        done = backup(
            store,
            open_target(store, target, settings.s3_options(), "target", existing=False),
            settings.backup_signing_key,
        )
    except PipelineError as exc:
        return Failed(message=f"backup: {exc}")
    return Completed(
        message=f"backup {done['id']}: {done['copied']} object(s) copied, {done['unchanged']} unchanged, to {done['to']}"
    )


@flow(name="restore")
@described
def restore_flow(
    dry_run: Annotated[bool, Field(description="Say what would change; change nothing")] = False,
) -> State:
    """The emergency procedure: keep the views, release what gone runs left, write back lost records,
    rebuild every view from the ledger, sync, audit. Fails when something could not be repaired."""
    settings, store = _open()
    result = restore(store, settings, dry_run=dry_run)
    lines = result.lines() + ([] if result.audit is None or result.audit.ok else result.audit.violations)
    publish_lines("restore", lines)
    return Completed(message="; ".join(lines)) if result.ok else Failed(message="; ".join(lines))


FLOWS = {
    "go-live": go_live,
    "replay-failed": replay_failed_flow,
    "inventory": inventory_flow,
    "batch": batch_flow,
    "preflight": preflight_flow,
    "generate": generate_flow,
    "consolidate": consolidate_flow,
    "audit": audit_flow,
    "sync": sync_flow,
    "sweep": sweep_flow,
    "collect": collect_flow,
    "health": health_flow,
    "progress": progress_flow,
    "publish": publish_flow,
    "backup": backup_flow,
    "restore": restore_flow,
    "report": report_flow,
    "template-rank": template_rank_flow,
}
