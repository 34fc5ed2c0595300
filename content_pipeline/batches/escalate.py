"""Escalations of a batch's QA failures: to STRONG_MODEL in a follow-up batch, or (BATCH_ESCALATE=sync) called
at once; an escalation the budget cannot cover is a reject that keeps the first answer's cost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from content_pipeline.batches.provider import BatchProvider
from content_pipeline.batches.results import resumed
from content_pipeline.batches.submit import Wanted, ensure_submitted, plan_batches
from content_pipeline.claims.pending import BatchPlan, PlanState, read_plans
from content_pipeline.configs import BatchConfig
from content_pipeline.errors import PipelineError
from content_pipeline.generation import prompts, qa
from content_pipeline.generation.calls import Attempt, call_model
from content_pipeline.generation.context import GenerationContext
from content_pipeline.generation.item import Decision, judge, outcome_record
from content_pipeline.generation.templates import load_template
from content_pipeline.llm.client import CallFailed
from content_pipeline.store import Store

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from content_pipeline.batches.collect import Collected


def escalate(
    provider: BatchProvider,
    store: Store,
    settings: BatchConfig,
    ctx: GenerationContext,
    plan: BatchPlan,
    wanted: list[Wanted],
    result: Collected,
    guard: Callable[[str], None] | None = None,
) -> None:
    """Escalate `wanted` (each with the first answer it paid) as BATCH_ESCALATE says, under the canary of the
    batch's prompts (a new one for a plan made before canaries); `guard` (the run lease's check) is called
    before each follow-up batch is created."""
    result.escalated += len(wanted)
    ctx.canary = plan.canary or ctx.canary
    if settings.batch_escalate == "sync":
        ctx.loop.run(lambda client: _calls(ctx, store, client, wanted, result))
        return
    prefix = f"{plan.name}-escalation-"
    planned = [s for s in read_plans(store, plan.run_id, collected=True) if s.plan.name.startswith(prefix)]
    covered = {r.record_id for s in planned for r in s.plan.requests}  # planned before a crash: not again
    todo = [w for w in wanted if w.record_id not in covered]
    plans, submitted = plan_batches(
        store, settings, plan.run_id, todo, settings.strong_model, ctx.budget, plan.name, ctx.canary
    )
    for want in todo[len(todo) - submitted.left_out :] if submitted.left_out else []:
        _skipped(ctx, store, want, f"escalation skipped: {submitted.stop_reason}", result)
    for new in plans:
        ensure_submitted(provider, store, PlanState(new, None, False), result.submitted, guard)


def _skipped(ctx: GenerationContext, store: Store, want: Wanted, why: str, result: Collected) -> None:
    """The first answer's QA failure as the item's reject (retryable: a later run may afford it)."""
    attempt = resumed(want.item.slug, want.record_id, want.calls)
    failed = want.failed or qa.Verdict(False, "qa", "")
    template = load_template(store, want.template)
    decision = Decision(qa.Verdict(False, failed.reason, f"{failed.detail}; {why}"), ctx.settings.model, template)
    decision.retryable = True
    record = outcome_record(ctx, want.item, attempt, decision, want.started_at)
    assert ctx.ledger is not None
    ctx.ledger.append(record)
    result.count(record)


async def _calls(
    ctx: GenerationContext, store: Store, client: AsyncOpenAI, wanted: list[Wanted], result: Collected
) -> None:
    """Each escalation called now on STRONG_MODEL (paced, reserved, retried as any call), its outcome appended."""

    async def one(want: Wanted) -> None:
        template = load_template(store, want.template)
        attempt: Attempt = resumed(want.item.slug, want.record_id, want.calls)
        model = ctx.settings.strong_model
        failed = want.failed or qa.Verdict(False, "qa", "")
        decision = Decision(failed, model, template, tried=2)
        try:
            msgs = prompts.messages(want.item, template, ctx.canary)
            answer = await call_model(ctx, client, model, msgs, attempt)
        except CallFailed as exc:
            decision.verdict, decision.retryable = qa.Verdict(False, "provider_error", exc.cause), exc.retryable
        except PipelineError as exc:
            ctx.stop(str(exc), fatal=exc)
            decision.verdict = qa.Verdict(False, failed.reason, f"{failed.detail}; escalation stopped: {exc}")
            decision.retryable = True
        else:
            if isinstance(answer, str):
                decision.verdict = qa.Verdict(False, failed.reason, f"{failed.detail}; escalation skipped: {answer}")
                decision.retryable = True
            else:
                decision.model = answer.model or model
                decision.content, decision.verdict = judge(answer, want.item, attempt, template, ctx.canary)
        record = outcome_record(ctx, want.item, attempt, decision, want.started_at)
        assert ctx.ledger is not None
        await ctx.ledger.write(record.line())
        if ctx.intents is not None:
            ctx.intents.settled(record.id)
        result.count(record)

    await asyncio.gather(*(one(want) for want in wanted))
