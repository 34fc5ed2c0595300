"""The Prefect flows: each stage on its own, and go-live chaining them. Thin: settings and store at the
edge, the core through tasks, and the report as an artifact."""

from __future__ import annotations

import time
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from content_pipeline import layout
from content_pipeline.catalogue import Item
from content_pipeline.errors import BadInputError, PipelineError
from content_pipeline.generate import open_generation, plan_chunks
from content_pipeline.inventory import read_items
from content_pipeline.report import RunReport
from content_pipeline.settings import RUN_ID_PATTERN, Scope, Settings, load_settings
from content_pipeline.store import Store, open_store
from content_pipeline.views import PeriodicConsolidator
from tasks.stages import (
    adopt_task,
    audit_task,
    batch_task,
    consolidate_task,
    generate_chunk_task,
    inventory_task,
    preflight_task,
    release_task,
    sync_task,
)

ScopeParam = Annotated[Scope | None, Field(description="all: every item; promo: promo items only (default: SCOPE)")]
LimitParam = Annotated[int | None, Field(ge=1, description="Most items this run claims (default: LIMIT)")]
BudgetParam = Annotated[float | None, Field(gt=0, description="Hard spend ceiling in USD (default: BUDGET_USD)")]
RunIdParam = Annotated[
    str | None, Field(pattern=RUN_ID_PATTERN.pattern, description="Run id; a unique one is made when empty")
]


def _open(**overrides: Any) -> tuple[Settings, Store]:
    """Settings from the environment with the flow's parameters on top, and the store they name."""
    settings = load_settings(**overrides).with_run_id()
    return settings, open_store(settings.store_url, read_only=settings.evidence_only)


def _run_items(store: Store, run_id: str, name: str, stage: str) -> list[Item]:
    """The items an earlier stage of this run wrote, or a clear line naming the command to run first."""
    items = read_items(store, layout.run_key(run_id, name))
    if items is None:
        raise BadInputError(
            f"run {run_id} has no {stage} output: run `content-pipeline {stage} --run-id {run_id}` first"
        )
    return items


def _new_report(settings: Settings, store: Store) -> RunReport:
    assert settings.run_id is not None
    return RunReport(
        run_id=settings.run_id,
        store=store.url,
        model=settings.model,
        strong_model=settings.strong_model,
        offline=settings.offline,
        evidence_only=settings.evidence_only,
        scope=settings.scope,
        limit=settings.limit,
        budget_usd=settings.budget_usd,
    )


def _publish(store: Store, report: RunReport) -> None:
    """The report as Prefect artifacts and, unless read-only, in the store beside the run's outputs."""
    markdown = report.markdown()
    create_markdown_artifact(markdown=markdown, key="go-live-report", description=f"run {report.run_id}")
    if report.stats.reject_reasons:
        create_table_artifact(
            table=[{"reason": r, "count": c} for r, c in report.stats.reject_reasons.most_common()],
            key="go-live-rejects",
            description=f"rejects by reason, run {report.run_id}",
        )
    if store.read_only:
        get_run_logger().info("EVIDENCE_ONLY run report (not stored):\n%s", markdown)
    else:
        store.put(layout.run_key(report.run_id, "report.md"), markdown.encode())


def _generate(
    store: Store, settings: Settings, run_id: str, items: list[Item], report: RunReport
) -> PipelineError | None:
    """Generate `items`: one Prefect task per chunk, asyncio concurrency inside; returns a fatal error, if any."""
    logger = get_run_logger()
    if not items:
        logger.info("generate: nothing to generate")
        return None
    if settings.evidence_only:
        logger.info("EVIDENCE_ONLY: %d item(s) would be generated; no call made, nothing spent", len(items))
        return None
    chunks, parallel, per_chunk = plan_chunks(items, settings)
    periodic = PeriodicConsolidator(store, settings.consolidate_every)
    ctx = open_generation(store, settings, run_id, parallel, on_success=periodic)
    logger.info(
        "generate: %d item(s) in %d chunk(s), %d chunk(s) at a time, %d call(s) in flight per chunk, %s",
        len(items),
        len(chunks),
        parallel,
        per_chunk,
        "offline model" if settings.offline else settings.model,
    )
    try:
        futures = [generate_chunk_task.submit(ctx, chunk, per_chunk) for chunk in chunks]
        for finished, future in enumerate(as_completed(futures), start=1):
            future.result()
            stats = ctx.stats
            logger.info(
                "progress: %d/%d chunk(s); %d success(es), %d reject(s), $%.4f spent",
                finished,
                len(chunks),
                stats.successes,
                stats.rejects,
                ctx.budget.spent_usd,
            )
    finally:
        if ctx.ledger is not None:
            ctx.ledger.close()
        periodic.join()
    report.stats, report.spend_usd = ctx.stats, ctx.budget.spent_usd
    report.stop_reason, report.consolidations = ctx.stop_reason, periodic.runs
    return ctx.fatal


def _finish(store: Store, report: RunReport) -> State:
    """consolidate, audit, sync, audit: the flow fails when the final audit does."""
    consolidate_task(store)
    report.consolidations += 1
    first = audit_task(store)
    sync_task(store)
    final = audit_task(store)
    report.audit_ok = first.ok and final.ok
    report.audit_violations = final.violations or first.violations
    report.notes += final.notes
    if not report.audit_ok:
        return Failed(
            message=f"audit failed: {len(report.audit_violations)} violation(s); first: {report.audit_violations[0]}"
        )
    return Completed(message="all invariants hold")


@flow(name="go-live", task_runner=ThreadPoolTaskRunner(max_workers=64))
def go_live(
    scope: ScopeParam = None, limit: LimitParam = None, budget_usd: BudgetParam = None, run_id: RunIdParam = None
) -> State:
    """inventory, batch, preflight, generate, consolidate, audit, sync, audit; with a run report."""
    started = time.perf_counter()
    settings, store = _open(scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)
    assert settings.run_id is not None
    run = settings.run_id
    report = _new_report(settings, store)
    claimed = False
    outcome: State
    try:
        inv = inventory_task(store, settings, run)
        report.catalogue_rows, report.catalogue_valid = inv.catalogue.rows, len(inv.catalogue.items)
        report.invalid_rows = [r.line(settings.catalogue) for r in inv.catalogue.invalid]
        report.needs_content = len(inv.needs)
        items = batch_task(store, settings, run, inv.needs, hold=True)
        claimed = not store.read_only
        report.claimed = len(items)
        checked = preflight_task(store, settings, run, items if store.read_only else None)
        report.preflight_dropped = dict(checked.dropped)
        fatal = _generate(store, settings, run, checked.items, report)
        if claimed:
            release_task(store, run)
            claimed = False
        outcome = _finish(store, report)
        if fatal is not None:
            outcome = Failed(message=str(fatal))
    except PipelineError as exc:
        report.stop_reason = str(exc)
        outcome = Failed(message=str(exc))
    finally:
        if claimed:
            release_task(store, run)
        report.duration_s = time.perf_counter() - started
        _publish(store, report)
    get_run_logger().info(
        "run %s: %d success(es), %d reject(s), $%.4f of $%.2f, audit %s",
        run,
        report.stats.successes,
        report.stats.rejects,
        report.spend_usd,
        report.budget_usd,
        {None: "not run", True: "green", False: "FAILED"}[report.audit_ok],
    )
    return outcome


@flow(name="inventory")
def inventory_flow(
    scope: ScopeParam = None, limit: LimitParam = None, budget_usd: BudgetParam = None, run_id: RunIdParam = None
) -> State:
    """Which items need content; writes the run's needs-content and invalid-row reports."""
    settings, store = _open(scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)
    try:
        inv = inventory_task(store, settings, settings.run_id)
    except PipelineError as exc:
        return Failed(message=str(exc))
    return Completed(
        message=f"run {settings.run_id}: {len(inv.needs)} item(s) need content; {len(inv.catalogue.invalid)} invalid row(s)"
    )


@flow(name="batch")
def batch_flow(
    scope: ScopeParam = None, limit: LimitParam = None, budget_usd: BudgetParam = None, run_id: RunIdParam = None
) -> State:
    """Claim up to LIMIT of the run's inventory under the batch-builder lease."""
    settings, store = _open(scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)
    try:
        needs = _run_items(store, settings.run_id, "needs-content.jsonl", "inventory")
        items = batch_task(store, settings, settings.run_id, needs, hold=False)
    except PipelineError as exc:
        return Failed(message=str(exc))
    return Completed(message=f"run {settings.run_id}: claimed {len(items)} item(s)")


@flow(name="preflight")
def preflight_flow(
    scope: ScopeParam = None, limit: LimitParam = None, budget_usd: BudgetParam = None, run_id: RunIdParam = None
) -> State:
    """Filter the run's batch and apply the budget guard."""
    settings, store = _open(scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)
    try:
        checked = preflight_task(store, settings, settings.run_id)
    except PipelineError as exc:
        return Failed(message=str(exc))
    return Completed(
        message=f"run {settings.run_id}: {len(checked.items)} item(s) ready; dropped {dict(checked.dropped)}"
    )


@flow(name="generate", task_runner=ThreadPoolTaskRunner(max_workers=64))
def generate_flow(
    scope: ScopeParam = None, limit: LimitParam = None, budget_usd: BudgetParam = None, run_id: RunIdParam = None
) -> State:
    """Generate the run's preflighted batch, then release its claims."""
    settings, store = _open(scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)
    report = _new_report(settings, store)
    try:
        items = _run_items(store, settings.run_id, "batch.jsonl", "batch")
        if not store.read_only:
            adopt_task(store, settings, settings.run_id)
        fatal = _generate(store, settings, settings.run_id, items, report)
        if not store.read_only:
            release_task(store, settings.run_id)
    except PipelineError as exc:
        return Failed(message=str(exc))
    if fatal is not None:
        return Failed(message=str(fatal))
    return Completed(
        message=f"run {settings.run_id}: {report.stats.successes} success(es), {report.stats.rejects} reject(s), ${report.spend_usd:.4f}"
    )


@flow(name="consolidate")
def consolidate_flow() -> State:
    """Rebuild master, indexes, usage and checkpoint from the ledger (idempotent)."""
    _, store = _open()
    try:
        result = consolidate_task(store)
    except PipelineError as exc:
        return Failed(message=str(exc))
    changed = ", ".join(result.changed) if result and result.changed else "nothing changed"
    return Completed(message=f"{result.records if result else 0} ledger records; {changed}")


@flow(name="audit")
def audit_flow() -> State:
    """Check every invariant; fails with one line per violation."""
    _, store = _open()
    result = audit_task(store)
    if not result.ok:
        return Failed(message="\n".join(result.violations))
    return Completed(message="all invariants hold")


@flow(name="sync")
def sync_flow() -> State:
    """Rewrite the checkpoint from master."""
    _, store = _open()
    try:
        changed = sync_task(store)
    except PipelineError as exc:
        return Failed(message=str(exc))
    return Completed(message="checkpoint rewritten from master" if changed else "checkpoint already matches master")
