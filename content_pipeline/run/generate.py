"""The generate stage: a run's items in chunks (started just ahead of their turn), progress, claims kept
alive, periodic consolidation, and what stopped it."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator

from content_pipeline.errors import PipelineError
from content_pipeline.generation.changed import restore_earlier
from content_pipeline.generation.context import GenerationContext, open_generation, plan_chunks
from content_pipeline.generation.loop import frozen_heap
from content_pipeline.intake.catalogue import Item
from content_pipeline.run.heartbeat import Heartbeat
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import Future, Submit
from content_pipeline.run.stages import Stages
from content_pipeline.views.periodic import PeriodicConsolidator

CHUNKS_AHEAD = 2  # chunks started beyond those generating, ready to take a slot when one ends
PROGRESS_EVERY_S = 1.0  # progress is reported at most this often (and when the last chunk ends)


def chunks_in_turn(
    submit: Submit,
    ctx: GenerationContext,
    chunks: list[list[Item]],
    parallel: int,
    per_chunk: int,
    failures: list[BaseException],
) -> Iterator[Future[int]]:
    """Each chunk's future as it finishes. A chunk is started (a Prefect task run: its state, its log lines)
    only a little ahead of its turn, as earlier ones finish: starting them all at once costs a burst of CPU
    just as the first calls go out. A chunk that cannot be started goes to `failures` and stops the run;
    those already started are still waited for."""
    from content_pipeline.generation.chunk import ChunkJob  # the openai SDK (0.5 s), once there is work for it

    done: queue.SimpleQueue[Future[int]] = queue.SimpleQueue()
    waiting = iter(chunks)
    running = 0

    def start_next() -> None:
        nonlocal running, waiting
        chunk = next(waiting, None)
        if chunk is None:
            return
        try:
            future = submit(ChunkJob(ctx, chunk, per_chunk))
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


def _progress_line(ctx: GenerationContext, finished: int, total: int) -> str:
    stats = ctx.stats
    return (
        f"progress: {finished}/{total} chunk(s); {stats.successes} success(es), {stats.rejects} reject(s), "
        f"${ctx.budget.spent_usd:.4f} spent"
    )


def _run_chunks(
    stages: Stages, ctx: GenerationContext, chunks: list[list[Item]], parallel: int, per_chunk: int, report: RunReport
) -> None:
    """Every chunk to its end, progress reported as they finish; the first failure raised once all are done."""
    reporter = stages.reporter
    failures: list[BaseException] = []
    reporter.progress(0, len(chunks), _progress_line(ctx, 0, len(chunks)))
    shown = time.monotonic()
    with reporter.chunks(parallel + CHUNKS_AHEAD) as submit:
        for finished, future in enumerate(chunks_in_turn(submit, ctx, chunks, parallel, per_chunk, failures), 1):
            try:
                future.result()
            except Exception as exc:
                failures.append(exc)
                ctx.stop(f"a generation chunk failed: {exc}")
            report.spend_usd = ctx.budget.spent_usd
            if finished == len(chunks) or time.monotonic() - shown >= PROGRESS_EVERY_S:
                reporter.progress(finished, len(chunks), _progress_line(ctx, finished, len(chunks)))
                shown = time.monotonic()
    if failures:
        raise failures[0]


def _restored(stages: Stages, items: list[Item], report: RunReport) -> list[Item]:
    """`items` less those changed back to the inputs of an earlier success: restored from it (no call)."""
    changed = stages.changed(items)
    if not changed:
        return items
    candidates = [item for item in items if item.slug in changed]
    restored = restore_earlier(stages.store, stages.settings, stages.run_id, candidates)
    if not restored:
        return items
    report.restored = len(restored)
    stages.log(f"generate: {len(restored)} changed item(s) restored from their earlier success (no call, $0)")
    back = {record.slug for record in restored}
    return [item for item in items if item.slug not in back]


def generate(stages: Stages, items: list[Item], report: RunReport) -> PipelineError | None:
    """Generate `items`: chunks with asyncio concurrency inside, claims renewed meanwhile, a consolidation
    every CONSOLIDATE_EVERY successes; returns the error that stopped the run, if any (the run's outcomes
    are in the ledger either way)."""
    settings, store = stages.settings, stages.store
    if not items and settings.generation_mode == "sync":
        stages.log("generate: nothing to generate")
        return None
    if settings.evidence_only:
        stages.log(f"EVIDENCE_ONLY: {len(items)} item(s) would be generated; no call made, nothing spent")
        return None
    items = _restored(stages, items, report)
    if settings.generation_mode == "batch":
        from content_pipeline.run.batchmode import submit_batches  # the Batch API's client, once it is used

        return submit_batches(stages, items, report)
    chunks, parallel, per_chunk = plan_chunks(items, settings, overlap=not settings.llm_global_limits)
    periodic = PeriodicConsolidator(store, settings.consolidate_every)
    again = stages.retry | stages.changed(items)  # a replay's rejects, changed items' successes (read once)
    ctx = open_generation(store, settings, stages.run_id, parallel, on_success=periodic, retry=again)
    ctx.limits = stages.reporter.shared_limits(settings, per_chunk)
    if ctx.fallback is not None:  # a primary down before the first call: the run starts on the fallback
        from content_pipeline.llm.client import down  # the SDK, imported once there is a call to make

        why = down(settings)
        if why is not None:
            ctx.fall_back(f"down at the start: {why}")
    report.stats, report.pacing = ctx.stats, ctx.pacer.stats
    model = "offline model" if settings.offline else settings.model
    stages.log(
        f"generate: {len(items)} item(s) in {len(chunks)} chunk(s), {parallel} chunk(s) at a time, "
        f"{per_chunk} call(s) in flight per chunk, {model}"
    )
    stats, budget = ctx.stats, ctx.budget
    beat = Heartbeat(
        "generate",
        len(items),
        settings.budget_usd,
        lambda: (stats.done, budget.spent_usd),
        stages.reporter,
        settings.heartbeat_s,
    ).start()
    try:
        with frozen_heap():  # no full collections of the heap under the calls
            _run_chunks(stages, ctx, chunks, parallel, per_chunk, report)
    finally:
        beat.stop()
        ctx.close()
        periodic.join()
        report.spend_usd = ctx.budget.spent_usd
        report.stop_reason, report.consolidations = ctx.stop_reason, periodic.runs
        report.primary_down = ctx.primary_down
    if ctx.primary_down is not None:
        fallback = ctx.fallback
        where = fallback.openai_base_url if fallback is not None else None
        stages.log(
            f"generate: the primary provider failed ({ctx.primary_down}): {ctx.stats.fallback_calls} call(s) went "
            f"to the fallback, {settings.fallback_model} at {where or 'api.openai.com'}",
            logging.WARNING,
        )
    if ctx.fatal is not None:
        stages.log(f"generate stopped: {ctx.fatal}", logging.ERROR)
    return ctx.fatal
