"""One model's calls for one item: paced, reserved against the budget, settled, retried in this one layer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from content_pipeline.errors import LedgerUnwritableError, PipelineError
from content_pipeline.generation.budget import BudgetExhausted, call_worst_nano
from content_pipeline.generation.content import RESPONSE_FORMAT
from content_pipeline.generation.context import GenerationContext
from content_pipeline.ledger.records import Call, new_record_id
from content_pipeline.llm.client import CallFailed, Completion, complete
from content_pipeline.llm.pacing import backoff
from content_pipeline.money import to_nano, to_usd

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from content_pipeline.settings import Settings


@dataclass
class Attempt:
    """Every call made for one item so far, with what they cost (each one goes into its ledger record), and
    the id that record will have (each call's intent names it)."""

    slug: str
    cache_key: str | None = None  # the prompt template's key: calls sharing it share a cached prefix
    record_id: str = field(default_factory=new_record_id)
    calls: list[Call] = field(default_factory=list)
    sent: int = 0  # calls announced in the intents log
    spent_nano: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0

    def book(self, model: str, result: Completion | CallFailed, cost_nano: int, provider: str | None = None) -> None:
        """One call: answered (its outcome decided by QA later) or failed with its cause."""
        self.spent_nano += cost_nano
        tokens_in = tokens_out = cached = 0
        if isinstance(result, Completion):
            tokens_in, tokens_out, cached = result.tokens_in, result.tokens_out, result.cached_tokens
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out
            self.tokens_cached += cached
        outcome = "pending" if isinstance(result, Completion) else f"failed: {result.cause}"
        self.calls.append(
            Call(
                model=model,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost_usd=to_usd(cost_nano),
                outcome=outcome,
                tokens_cached=cached,
                provider=provider,
            )
        )

    def decide_last(self, outcome: str) -> None:
        """QA's verdict on the last answer (a new Call rather than model_copy(update=...): ~15x cheaper)."""
        last = self.calls[-1]
        self.calls[-1] = Call(
            model=last.model,
            tokens_in=last.tokens_in,
            tokens_out=last.tokens_out,
            cost_usd=last.cost_usd,
            outcome=outcome,
            tokens_cached=last.tokens_cached,
            provider=last.provider,
        )

    def tries(self, model: str) -> int:
        return sum(c.model == model for c in self.calls)


async def call_model(
    ctx: GenerationContext,
    client: AsyncOpenAI,
    model: str,
    msgs: list[dict[str, str]],
    attempt: Attempt,
    provider: Settings | None = None,
) -> Completion | str:
    """One answer from `model`, retried here (the only retry layer) on 429, 5xx, timeouts and dropped
    connections. Returns the completion or why no call was made; raises CallFailed when the tries are
    used up (`transient` when the provider failed, not the request), or a PipelineError that stops the run
    (a key that does not work, no quota, no such model). `provider`: the fallback's settings (its base URL
    and key), the calls booked as the fallback's."""
    settings = ctx.settings
    worst = call_worst_nano(ctx.prices, settings, model, msgs)
    where = (provider.openai_base_url or "api.openai.com") if provider is not None else None
    retries = waits = 0
    tier = settings.service_tier
    while True:
        if attempt.spent_nano + worst > to_nano(settings.item_budget_usd):
            return (
                f"item budget ${settings.item_budget_usd:g} cannot cover a call to {model} (up to ${to_usd(worst):.4f})"
            )
        extra = _extra(settings, tier, attempt.cache_key)
        result, cost = await _paid_call(ctx, client, model, msgs, worst, attempt, provider, extra)
        if isinstance(result, str):
            return result
        attempt.book(model, result, cost, where)
        if isinstance(result, Completion):
            return result
        if result.rate_limited:
            waits += 1
            used_up = waits > settings.max_rate_limit_retries
        else:
            retries += 1
            used_up = retries > settings.max_retries
        if used_up and result.code == "resource_unavailable" and tier == "flex" and settings.flex_then_auto:
            tier, retries = "auto", 0  # no flex capacity: sent again at once, at the full price
            continue
        if not result.transient or used_up or ctx.stopped:
            raise CallFailed(
                f"{result.cause}; {attempt.tries(model)} attempt(s)", result.retryable, transient=result.transient
            )
        if result.retry_after is not None:
            ctx.pacer.hold(result.retry_after)  # every call of the run waits as told
        else:
            await asyncio.sleep(backoff(retries or waits))


def _extra(settings: Settings, tier: str, cache_key: str | None) -> dict[str, str]:
    """A call's own parameters: the service tier (none for auto), the prompt cache key (PROMPT_CACHE_KEY)."""
    extra = {"service_tier": tier} if tier != "auto" else {}
    return extra | ({"prompt_cache_key": cache_key} if settings.prompt_cache_key and cache_key else {})


async def _paid_call(
    ctx: GenerationContext,
    client: AsyncOpenAI,
    model: str,
    msgs: list[dict[str, str]],
    worst: int,
    attempt: Attempt,
    provider: Settings | None,
    extra: dict[str, str],
) -> tuple[Completion | CallFailed | str, int]:
    """One request: its intent made durable while it waits for a slot of the run's gate, then under the
    slot paced, its worst case reserved, sent, and settled with what it cost. Returns (the answer, the
    failure, or why it was not sent; its cost in nano-dollars)."""
    if ctx.stopped and not attempt.calls:
        return f"the run stopped: {ctx.stop_reason}", 0
    # announced before the slot is taken: the fsync overlaps the wait for a slot instead of holding one
    if not await _announce(ctx, attempt, model, worst):
        return f"the run stopped: {ctx.stop_reason}", 0
    async with ctx.loop.gate:  # CONCURRENCY bounds calls in flight: an item holds a slot only while it calls
        if ctx.stopped and not attempt.calls:
            _void(ctx, attempt, f"not sent: the run stopped: {ctx.stop_reason}")
            return f"the run stopped: {ctx.stop_reason}", 0
        async with ctx.pacer.turn() as flight:  # a slow start until the rate-limit headers are read, then paced
            try:  # waits while calls in flight hold the money this one needs; raises only with none in flight
                reservation = await ctx.budget.reserve_in_turn(worst)
            except BudgetExhausted as exc:
                ctx.stop(str(exc))
                _void(ctx, attempt, f"not sent: {exc}")
                return str(exc), 0
            result: Completion | CallFailed
            cost = 0
            try:
                result = await _request(ctx, client, model, msgs, provider or ctx.settings, extra)
                flight.answered(True)
                # no usage reported: book the worst case rather than lose track of money; flex (as the answer
                # names its tier) at the batch price; cache writes at their price
                used = ctx.prices.cost_nano(
                    model,
                    result.tokens_in,
                    result.tokens_out,
                    result.cached_tokens,
                    batch=result.service_tier == "flex",
                    written=result.written_tokens,
                )
                cost = used if result.tokens_in or result.tokens_out else worst
            except CallFailed as exc:
                result = exc
                flight.answered(False, exc.rate_limited)
                # an answer lost in flight may have been generated and billed: book the worst case
                cost = worst if exc.unknown_outcome else 0
            except PipelineError as exc:  # an error answer (a key that does not work, no quota): it cost nothing
                _void(ctx, attempt, str(exc))
                raise
            finally:
                ctx.budget.settle(reservation, cost)
            return result, cost


async def _announce(ctx: GenerationContext, attempt: Attempt, model: str, worst: int) -> bool:
    """The call's intent, durable before it is sent (the log's writer thread fsyncs it; the event loop only
    waits); False when the store will not take it (the run stops and the call is not sent)."""
    attempt.sent += 1
    if ctx.intents is None:
        return True
    try:
        await ctx.intents.going_out(attempt.record_id, attempt.sent, attempt.slug, model, worst)
    except LedgerUnwritableError as exc:
        ctx.stop(str(exc), fatal=exc)
        return False
    return True


def _void(ctx: GenerationContext, attempt: Attempt, cause: str) -> None:
    """The announced call cost nothing (not sent, or an error answer): written before the log is closed,
    not waited for."""
    if ctx.intents is not None:
        ctx.intents.void(attempt.record_id, attempt.sent, cause)


async def _request(
    ctx: GenerationContext,
    client: AsyncOpenAI,
    model: str,
    msgs: list[dict[str, str]],
    provider: Settings,
    extra: dict[str, str],
) -> Completion:
    if ctx.limits is None:
        return await complete(client, provider, model, msgs, RESPONSE_FORMAT, ctx.pacer, extra)
    async with ctx.limits.call():  # a provider-wide rate shared with other workers
        return await complete(client, provider, model, msgs, RESPONSE_FORMAT, ctx.pacer, extra)
