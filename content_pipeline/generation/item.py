"""One item to a final QA decision: the first model, one escalation to the strong model, the ledger record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from content_pipeline.errors import PipelineError
from content_pipeline.generation import prompts, qa
from content_pipeline.generation.calls import Attempt, call_model
from content_pipeline.generation.content import ItemContent
from content_pipeline.generation.context import GenerationContext
from content_pipeline.generation.nearcopy import sketch
from content_pipeline.generation.templates import DEFAULT, PromptTemplate
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.records import OutcomeRecord
from content_pipeline.llm.client import CallFailed, Completion
from content_pipeline.money import to_usd

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from content_pipeline.settings import Settings


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Decision:
    """Where an item's attempts ended: QA's verdict, the content it passed, the model that answered last,
    whether a later run may try again, and how many models were tried."""

    verdict: qa.Verdict
    model: str
    template: PromptTemplate = DEFAULT
    content: ItemContent | None = None
    retryable: bool = False
    tried: int = 1


def judge(
    result: Completion, item: Item, attempt: Attempt, template: PromptTemplate, canary: str = ""
) -> tuple[ItemContent | None, qa.Verdict]:
    """QA of one answer to a prompt that carried `canary`; the verdict goes into the answer's Call."""
    content, verdict = qa.parse_content(result.text, result.finish_reason, result.refusal)
    if content is not None:
        verdict = qa.check_content(content, item, template.system, canary)
    attempt.decide_last("pass" if verdict.ok else str(verdict.reason))
    return content, verdict


def _not_called(ctx: GenerationContext, decision: Decision, why: str, attempt: Attempt) -> Decision | None:
    """A model that could not be called (budget, item budget, the run stopping): None when nothing was
    called for the item at all and the run is stopping (it stays claimable); else a retryable reject."""
    decision.retryable = True
    if decision.tried == 1:
        if ctx.stopped and not attempt.calls:
            return None
        # failed attempts may already have been paid: their record goes to the ledger
        decision.verdict = qa.Verdict(False, "budget" if ctx.stopped else "item_budget", why)
    else:
        decision.verdict = qa.Verdict(
            False, decision.verdict.reason, f"{decision.verdict.detail}; escalation skipped: {why}"
        )
    return decision


async def decide(ctx: GenerationContext, client: AsyncOpenAI, item: Item, attempt: Attempt) -> Decision | None:
    """Call the first model and, when QA fails, the strong model once; None when no decision was reached
    and nothing was paid (the run is stopping)."""
    settings = ctx.settings
    template = ctx.templates.for_slug(item.slug)
    attempt.cache_key = template.key
    msgs = prompts.messages(item, template, ctx.canary)
    decision = Decision(qa.Verdict(False, "not_attempted", ""), settings.model, template)
    for number, model in enumerate((settings.model, settings.strong_model), start=1):
        decision.tried, decision.model = number, model
        try:
            result = await _call(ctx, client, model, msgs, attempt)
        except CallFailed as exc:
            decision.verdict, decision.retryable = qa.Verdict(False, "provider_error", exc.cause), exc.retryable
            return decision
        except PipelineError as exc:  # invalid key, quota, unknown model: the whole run stops
            ctx.stop(str(exc), fatal=exc)
            if not attempt.calls:
                return None
            # the first call was paid: its outcome goes to the ledger all the same
            previous = decision.verdict
            decision.verdict = qa.Verdict(False, previous.reason, f"{previous.detail}; escalation stopped: {exc}")
            decision.retryable = True
            return decision
        if isinstance(result, str):
            return _not_called(ctx, decision, result, attempt)
        decision.model = result.model or model  # the model that answered, as the response names it
        decision.content, decision.verdict = judge(result, item, attempt, template, ctx.canary)
        if decision.verdict.ok:
            return decision
    return decision


async def _call(
    ctx: GenerationContext, client: AsyncOpenAI, model: str, msgs: list[dict[str, str]], attempt: Attempt
) -> Completion | str:
    """One answer from `model` on the primary provider; once the primary has failed past its retries (5xx,
    timeouts, a dropped connection, resource_unavailable) and FALLBACK_MODEL is set, from the fallback
    instead, for this call and every later one of the run, under the same budget."""
    fallback = ctx.fallback
    if fallback is None or ctx.primary_down is None:
        try:
            return await call_model(ctx, client, model, msgs, attempt)
        except CallFailed as exc:
            if fallback is None or not exc.transient or ctx.stopped:
                raise
            ctx.fall_back(f"{model}: {exc.cause}")
    assert fallback is not None and fallback.fallback_model is not None
    other = client.with_options(base_url=fallback.openai_base_url, api_key=_key(fallback))
    return await call_model(ctx, other, fallback.fallback_model, msgs, attempt, provider=fallback)


def _key(settings: Settings) -> str:
    assert settings.openai_api_key is not None
    return settings.openai_api_key.get_secret_value()


def outcome_record(
    ctx: GenerationContext, item: Item, attempt: Attempt, decision: Decision, started: str
) -> OutcomeRecord:
    """The outcome record of a decided item, near-copies checked (and the new content registered)."""
    verdict, content = decision.verdict, decision.content
    signature: list[int] = []
    if verdict.ok and content is not None:
        signature = sketch(content.description)
        verdict = ctx.near_copies.claim(item.slug, signature)
    ok = verdict.ok and content is not None
    return OutcomeRecord(
        id=attempt.record_id,
        run_id=ctx.run_id,
        slug=item.slug,
        status="success" if ok else "reject",
        content=content.model_dump() if ok and content else None,
        sketch=signature if ok else [],
        error=None if ok else verdict.error,
        reason=None if ok else verdict.reason,
        retryable=False if ok else decision.retryable,
        model=decision.model,
        prompt_template=decision.template.id,
        prompt_version=decision.template.version,
        input_hash=prompts.input_hash(item, decision.template, ctx.settings.model),
        tokens_in=attempt.tokens_in,
        tokens_out=attempt.tokens_out,
        tokens_cached=attempt.tokens_cached,
        cost_usd=to_usd(attempt.spent_nano),
        attempt=decision.tried,
        escalated=decision.tried > 1,
        calls=attempt.calls,
        run_budget_usd=to_usd(ctx.budget.limit),
        offline=ctx.settings.offline,
        source_fields=prompts.used_fields(item, decision.template),
        started_at=started,
        finished_at=_now(),
    )


async def generate_item(ctx: GenerationContext, client: AsyncOpenAI, item: Item) -> OutcomeRecord | None:
    """Generate one item to a final QA decision and append it to the ledger; None when no decision was
    reached (run stopping)."""
    started = _now()
    attempt = Attempt(item.slug)
    decision = await decide(ctx, client, item, attempt)
    if decision is None:
        return None
    record = outcome_record(ctx, item, attempt, decision, started)
    if ctx.ledger is not None:
        # durable before anything else is told: the ledger's writer thread fsyncs it (the event loop only
        # waits), and records finishing together share one write and one fsync (group commit)
        await ctx.ledger.write(record.line())
        if ctx.intents is not None and ctx.ledger.failure is None:  # in the ledger (not a rescue file)
            ctx.intents.settled(record.id)
    successes = ctx.stats.count(record)
    if record.status == "success" and ctx.on_success is not None:
        ctx.on_success(successes)
    return record
