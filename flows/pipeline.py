"""The Prefect flows: each stage on its own, and go-live chaining them. Thin: settings and store at the
edge, the core through tasks, and the report as an artifact."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import PrefectFuture
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from pydantic import Field

from blocks import LLMConfig, StoreLocation
from content_pipeline import layout
from content_pipeline.batch import ClaimKeeper, run_lease
from content_pipeline.catalogue import Item
from content_pipeline.errors import AuditFailedError, BadInputError, PipelineError
from content_pipeline.generate import GenerationContext, frozen_heap, open_generation, plan_chunks
from content_pipeline.inventory import read_items
from content_pipeline.report import RunReport, run_rejects
from content_pipeline.settings import RUN_ID_PATTERN, Scope, Settings, load_settings
from content_pipeline.store import Store, store_for
from content_pipeline.views import PeriodicConsolidator
from tasks.stages import (
    adopt_task,
    audit_task,
    batch_task,
    chunk_task,
    consolidate_task,
    inventory_task,
    prefect_limits,
    preflight_task,
    release_task,
    sync_task,
)

CHUNKS_AHEAD = 2  # chunk task runs started beyond those generating, ready to take a slot when one ends
PROGRESS_EVERY_S = 1.0  # the progress artifact is updated at most this often (and when the last chunk ends)
_DEFAULT = {name: field.default for name, field in Settings.model_fields.items()}
ScopeParam = Annotated[Scope, Field(description="all: every item; promo: promo items only")]
LimitParam = Annotated[int, Field(ge=1, description="Most items this run claims")]
BudgetParam = Annotated[float, Field(gt=0, description="Hard spend ceiling of this run, USD")]
RunIdParam = Annotated[
    str | None,
    Field(pattern=RUN_ID_PATTERN.pattern, description="Run id; a unique one (UTC time + random) is made when empty"),
]


def _block_overrides(settings: Settings) -> dict[str, Any]:
    """What the StoreLocation and LLMConfig blocks named in the settings set, for those that exist."""
    found: dict[str, Any] = {}
    for block_type, name in ((StoreLocation, settings.store_block), (LLMConfig, settings.llm_block)):
        if not name:
            continue
        try:
            block = block_type.load(name)
        except ValueError:  # no such block: the settings stand
            continue
        found.update(block.settings_overrides())
    return found


def _open(**params: Any) -> tuple[Settings, Store]:
    """Settings from the environment, then the blocks that exist, then the flow's parameters on top;
    and the store they name."""
    settings = load_settings(**{**_block_overrides(load_settings()), **params}).with_run_id()
    return settings, store_for(settings)


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
    """The report and the run's rejects as Prefect artifacts and, unless read-only, the report in the store."""
    markdown = report.markdown()
    create_markdown_artifact(markdown=markdown, key="go-live-report", description=f"run {report.run_id}")
    rejects = run_rejects(store, report.run_id)
    if rejects:
        create_table_artifact(table=rejects, key="go-live-rejects", description=f"rejects of run {report.run_id}")
    if store.read_only:
        get_run_logger().info("EVIDENCE_ONLY run report (not stored):\n%s", markdown)
    else:
        store.put(layout.run_key(report.run_id, "report.md"), markdown.encode())


def _chunks_in_turn(
    ctx: GenerationContext, chunks: list[list[Item]], parallel: int, per_chunk: int, failures: list[BaseException]
) -> Iterator[PrefectFuture[int]]:
    """Each chunk's task run as it finishes. A chunk's task run is started (its state, its log lines) only
    a little ahead of its turn, as earlier ones finish: starting them all at once costs a burst of CPU just
    as the first calls go out. A chunk that cannot be started goes to `failures` and stops the run; those
    already started are still waited for. quote: the context and items hold no futures to look for."""
    task = chunk_task()
    done: queue.SimpleQueue[PrefectFuture[int]] = queue.SimpleQueue()
    waiting = iter(chunks)
    running = 0

    def start_next() -> None:
        nonlocal running, waiting
        chunk = next(waiting, None)
        if chunk is None:
            return
        try:
            future = task.submit(quote(ctx), quote(chunk), per_chunk)
        except Exception as exc:
            failures.append(exc)
            ctx.stop(f"a generation chunk could not be started: {exc}")
            waiting = iter(())
            return
        running += 1
        future.add_done_callback(done.put)

    for _ in range(parallel + CHUNKS_AHEAD):
        start_next()
    while running:
        future = done.get()
        running -= 1
        start_next()
        yield future


def _generate(
    store: Store, settings: Settings, run_id: str, items: list[Item], report: RunReport
) -> PipelineError | None:
    """Generate `items`: one Prefect task per chunk, asyncio concurrency inside, a progress artifact
    updated as chunks finish; returns a fatal error, if any."""
    logger = get_run_logger()
    if not items:
        logger.info("generate: nothing to generate")
        return None
    if settings.evidence_only:
        logger.info("EVIDENCE_ONLY: %d item(s) would be generated; no call made, nothing spent", len(items))
        return None
    chunks, parallel, per_chunk = plan_chunks(items, settings, overlap=not settings.llm_global_limits)
    periodic = PeriodicConsolidator(store, settings.consolidate_every)
    ctx = open_generation(store, settings, run_id, parallel, on_success=periodic)
    ctx.limits = prefect_limits(settings, per_chunk)
    report.stats, report.pacing = ctx.stats, ctx.pacer.stats
    logger.info(
        "generate: %d item(s) in %d chunk(s), %d chunk(s) at a time, %d call(s) in flight per chunk, %s",
        len(items),
        len(chunks),
        parallel,
        per_chunk,
        "offline model" if settings.offline else settings.model,
    )
    keeper = ClaimKeeper(store, run_id, settings.claim_ttl_s)  # a long run's claims never expire under it
    progress = create_progress_artifact(progress=0.0, key="go-live-progress", description=f"generation, run {run_id}")
    with frozen_heap():  # no full collections of the heap under the calls
        try:
            failures: list[BaseException] = []
            shown = time.monotonic()
            for finished, future in enumerate(_chunks_in_turn(ctx, chunks, parallel, per_chunk, failures), start=1):
                try:
                    future.result()
                except Exception as exc:
                    failures.append(exc)
                    ctx.stop(f"a generation chunk failed: {exc}")
                report.spend_usd = ctx.budget.spent_usd
                if finished == len(chunks) or time.monotonic() - shown >= PROGRESS_EVERY_S:
                    update_progress_artifact(progress, progress=100.0 * finished / len(chunks))
                    shown = time.monotonic()
                logger.info(
                    "progress: %d/%d chunk(s); %d success(es), %d reject(s), $%.4f spent",
                    finished,
                    len(chunks),
                    ctx.stats.successes,
                    ctx.stats.rejects,
                    ctx.budget.spent_usd,
                )
            if failures:
                raise failures[0]
        finally:
            keeper.stop()
            if ctx.ledger is not None:
                ctx.ledger.close()
            periodic.join()
            report.spend_usd = ctx.budget.spent_usd
            report.stop_reason, report.consolidations = ctx.stop_reason, periodic.runs
    return ctx.fatal


def _finish(store: Store, report: RunReport) -> None:
    """consolidate, audit, sync, audit; raises AuditFailedError when either audit fails."""
    report.stage = "consolidate"
    consolidate_task(store)
    report.consolidations += 1
    report.stage = "audit"
    first = audit_task(store)
    report.stage = "sync"
    sync_task(store)
    report.stage = "audit"
    final = audit_task(store)
    report.audit_ok = first.ok and final.ok
    report.audit_violations = final.violations or first.violations
    report.notes += final.notes
    if not report.audit_ok:
        raise AuditFailedError(
            f"audit failed: {len(report.audit_violations)} violation(s); first: {report.audit_violations[0]}"
        )


@flow(name="go-live", task_runner=ThreadPoolTaskRunner(max_workers=64))
def go_live(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
) -> State:
    """inventory, batch, preflight, generate, consolidate, audit, sync, audit; with a run report.
    A failure names the stage and the spend so far, for the notification that announces it."""
    started = time.perf_counter()
    settings, store = _open(scope=scope, limit=limit, budget_usd=budget_usd, run_id=run_id)
    assert settings.run_id is not None
    run = settings.run_id
    report = _new_report(settings, store)
    claimed = False
    lease = None
    try:
        report.stage = "start"
        lease = None if store.read_only else run_lease(store, run, settings.lease_ttl_s)
        report.stage = "inventory"
        inv = inventory_task(store, settings, run)
        report.catalogue_rows, report.catalogue_valid = inv.catalogue.rows, len(inv.catalogue.items)
        report.invalid_rows = [r.line(settings.catalogue) for r in inv.catalogue.invalid]
        report.needs_content = len(inv.needs)
        report.stage = "batch"
        items = batch_task(store, settings, run, inv.needs, hold=True)
        claimed = not store.read_only
        report.claimed = len(items)
        report.stage = "preflight"
        checked = preflight_task(store, settings, run, items if store.read_only else None)
        report.preflight_dropped = dict(checked.dropped)
        report.stage = "generate"
        fatal = _generate(store, settings, run, checked.items, report)
        if claimed:
            release_task(store, run)
            claimed = False
        _finish(store, report)
        if fatal is not None:
            report.stage = "generate"
            raise fatal
        outcome: State = Completed(message="all invariants hold")
    except PipelineError as exc:
        report.stop_reason = str(exc)
        outcome = Failed(message=f"{report.stage}: {exc} (spent ${report.spend_usd:.4f} of ${report.budget_usd:.2f})")
    finally:
        if claimed:
            release_task(store, run)
        if lease is not None:
            lease.release()
        report.duration_s = time.perf_counter() - started
        report.requests = store.request_counts()
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


def _stage(params: dict[str, Any], body: Callable[[Settings, Store], str]) -> State:
    """Run one stage flow's body on the resolved settings and store: Completed with its summary line,
    or Failed with the one-line reason."""
    settings, store = _open(**params)
    try:
        return Completed(message=body(settings, store))
    except PipelineError as exc:
        return Failed(message=str(exc))


@flow(name="inventory")
def inventory_flow(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
) -> State:
    """Which items need content; writes the run's needs-content and invalid-row reports."""

    def body(settings: Settings, store: Store) -> str:
        inv = inventory_task(store, settings, settings.run_id)
        return (
            f"run {settings.run_id}: {len(inv.needs)} item(s) need content; {len(inv.catalogue.invalid)} invalid row(s)"
        )

    return _stage({"scope": scope, "limit": limit, "budget_usd": budget_usd, "run_id": run_id}, body)


@flow(name="batch")
def batch_flow(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
) -> State:
    """Claim up to LIMIT of the run's inventory under the batch-builder lease (fails at once when held)."""

    def body(settings: Settings, store: Store) -> str:
        needs = _run_items(store, settings.run_id, "needs-content.jsonl", "inventory")
        items = batch_task(store, settings, settings.run_id, needs, hold=False)
        return f"run {settings.run_id}: claimed {len(items)} item(s)"

    return _stage({"scope": scope, "limit": limit, "budget_usd": budget_usd, "run_id": run_id}, body)


@flow(name="preflight")
def preflight_flow(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
) -> State:
    """Filter the run's batch and apply the budget guard."""

    def body(settings: Settings, store: Store) -> str:
        checked = preflight_task(store, settings, settings.run_id)
        return f"run {settings.run_id}: {len(checked.items)} item(s) ready; dropped {dict(checked.dropped)}"

    return _stage({"scope": scope, "limit": limit, "budget_usd": budget_usd, "run_id": run_id}, body)


@flow(name="generate", task_runner=ThreadPoolTaskRunner(max_workers=64))
def generate_flow(
    scope: ScopeParam = _DEFAULT["scope"],
    limit: LimitParam = _DEFAULT["limit"],
    budget_usd: BudgetParam = _DEFAULT["budget_usd"],
    run_id: RunIdParam = None,
) -> State:
    """Generate the run's preflighted batch, then release its claims."""

    def body(settings: Settings, store: Store) -> str:
        report = _new_report(settings, store)
        items = _run_items(store, settings.run_id, "batch.jsonl", "batch")
        if store.read_only:
            fatal = _generate(store, settings, settings.run_id, items, report)
        else:
            lease = run_lease(store, settings.run_id, settings.lease_ttl_s)
            try:
                if items and not adopt_task(store, settings, settings.run_id):
                    raise BadInputError(
                        f"run {settings.run_id} holds no claims (expired or released): "
                        f"run `content-pipeline batch --run-id {settings.run_id}` again"
                    )
                fatal = _generate(store, settings, settings.run_id, items, report)
                release_task(store, settings.run_id)
            finally:
                lease.release()
        if fatal is not None:
            raise fatal
        stats = report.stats
        return (
            f"run {settings.run_id}: {stats.successes} success(es), {stats.rejects} reject(s), ${report.spend_usd:.4f}"
        )

    return _stage({"scope": scope, "limit": limit, "budget_usd": budget_usd, "run_id": run_id}, body)


@flow(name="consolidate")
def consolidate_flow() -> State:
    """Rebuild master, indexes, usage and checkpoint from the ledger (idempotent); views changed by hand
    are written again."""

    def body(settings: Settings, store: Store) -> str:
        result = consolidate_task(store, verify=True)
        changed = ", ".join(result.changed) if result and result.changed else "nothing changed"
        return f"{result.records if result else 0} ledger records; {changed}"

    return _stage({}, body)


@flow(name="audit")
def audit_flow() -> State:
    """Check every invariant; fails with one line per violation."""

    def body(settings: Settings, store: Store) -> str:
        result = audit_task(store)
        if not result.ok:
            raise AuditFailedError("\n".join(result.violations))
        return "all invariants hold"

    return _stage({}, body)


@flow(name="sync")
def sync_flow() -> State:
    """Rewrite the checkpoint from master."""

    def body(settings: Settings, store: Store) -> str:
        return "checkpoint rewritten from master" if sync_task(store) else "checkpoint already matches master"

    return _stage({}, body)
