"""Generation: for each item, reserve, call, QA, escalate once, settle, and append the outcome to the ledger."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from openai import AsyncOpenAI

from content_pipeline import llm, prompts, qa
from content_pipeline.budget import BudgetExhausted, PriceTable, RunBudget, to_usd
from content_pipeline.catalogue import Item
from content_pipeline.errors import PipelineError
from content_pipeline.gate import InFlightGate
from content_pipeline.ledger import Call, LedgerWriter, OutcomeRecord, record_id
from content_pipeline.pacing import Pacer, backoff
from content_pipeline.report import RunStats
from content_pipeline.settings import Settings
from content_pipeline.store import Store
from content_pipeline.views import current_checkpoint, read_sketches, read_usage

T = TypeVar("T")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SharedLimits(Protocol):
    """Provider limits shared with other processes (the flow layer backs them with Prefect's)."""

    def chunk(self, slots: int) -> AbstractAsyncContextManager[None]:
        """Hold `slots` of the shared in-flight limit while a chunk runs."""
        ...

    def call(self) -> AbstractAsyncContextManager[None]:
        """One request's share of the shared rate limit."""
        ...


class ChunkLoop:
    """The run's one event loop, on a thread of its own, with one client, shared by every chunk while any
    chunk runs (started by the first, closed by the last). Chunks keep their own threads (Prefect task
    runs), but their calls take turns in one loop and reuse one connection pool: a loop, client, SSL
    context, thread pool and new connections per chunk, and several loops contending for the GIL, cost
    more CPU than the calls themselves."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._users = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: AsyncOpenAI | None = None

    def run(
        self, make: Callable[[AsyncOpenAI], Coroutine[Any, Any, T]], turn: AbstractContextManager[object] | None = None
    ) -> T:
        """Wait for `turn` (a chunk slot; the loop stays up meanwhile), then run `make(client)` in the loop
        and wait for it. It runs in the caller's context (contextvars), as it would under asyncio.run in the
        caller's thread; an exception in the caller cancels it."""
        loop, client = self._enter()
        ended = threading.Event()

        async def guarded() -> T:
            try:
                return await make(client)
            finally:
                ended.set()

        try:
            with turn if turn is not None else nullcontext():
                future = asyncio.run_coroutine_threadsafe(guarded(), loop)
                try:
                    return future.result()
                except BaseException:
                    if future.cancel():  # interrupted while it runs: let it wind down before the loop may close
                        ended.wait(30)
                    raise
        finally:
            self._leave()

    def _enter(self) -> tuple[asyncio.AbstractEventLoop, AsyncOpenAI]:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=self._serve, args=(loop,), name="generation-loop", daemon=True)
                thread.start()
                self._loop, self._thread, self._client = loop, thread, llm.make_client(self._settings)
            self._users += 1
            assert self._client is not None
            return self._loop, self._client

    def _leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users or self._loop is None:
                return
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = None
            assert thread is not None and client is not None
            try:
                asyncio.run_coroutine_threadsafe(self._close(client), loop).result()
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
                loop.close()

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    @staticmethod
    async def _close(client: AsyncOpenAI) -> None:
        loop = asyncio.get_running_loop()
        await client.close()
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """While generating, the cycle collector leaves alone the objects the process held before (gc.freeze):
    a full collection of a Prefect worker's heap holds the GIL for ~0.2 s, stalling every call's answer."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class GenerationContext:
    """Everything the chunks of one run share."""

    settings: Settings
    run_id: str
    budget: RunBudget
    prices: PriceTable
    ledger: LedgerWriter | None
    near_copies: qa.NearCopyIndex
    already: frozenset[str] = frozenset()
    on_success: Callable[[int], None] | None = None
    limits: SharedLimits | None = None
    pacer: Pacer = field(default_factory=Pacer)
    gate: InFlightGate | None = None  # calls in flight over every chunk of the run (CONCURRENCY)
    slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(1))
    stats: RunStats = field(default_factory=RunStats)
    loop: ChunkLoop | None = None  # made from `settings` when None
    stop_reason: str | None = None
    fatal: PipelineError | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stop(self, reason: str, fatal: PipelineError | None = None) -> None:
        """Stop claiming new work: run budget reached, quota gone, or a key that does not work."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            if fatal is not None and self.fatal is None:
                self.fatal = fatal

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    def __post_init__(self) -> None:
        if self.loop is None:
            self.loop = ChunkLoop(self.settings)


@dataclass
class _Attempt:
    calls: list[Call] = field(default_factory=list)
    spent_nano: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


async def _call(
    ctx: GenerationContext, client: AsyncOpenAI, model: str, msgs: list[dict[str, str]], attempt: _Attempt
) -> llm.Completion | str:
    """One call to `model`, retried here (the only retry layer) on 429, 5xx, timeouts and dropped
    connections. Every attempt is paced, reserved against the budget, settled and counted in the record.
    Returns the completion or why no call was made; raises CallFailed when the tries are used up."""
    settings = ctx.settings
    worst = ctx.prices.cost_nano(model, prompts.prompt_tokens_upper_bound(msgs), settings.max_output_tokens)
    item_limit = round(settings.item_budget_usd * 1_000_000_000)
    shared = ctx.gate if ctx.gate is not None else nullcontext()
    retries = waits = 0
    while True:
        if attempt.spent_nano + worst > item_limit:
            return (
                f"item budget ${settings.item_budget_usd:g} cannot cover a call to {model} (up to ${to_usd(worst):.4f})"
            )
        async with shared:  # CONCURRENCY bounds calls in flight: an item holds a slot only while it calls
            if ctx.stopped and not attempt.calls:
                return f"the run stopped: {ctx.stop_reason}"
            await ctx.pacer.wait()
            try:
                reservation = ctx.budget.reserve(worst)
            except BudgetExhausted as exc:
                ctx.stop(str(exc))
                return str(exc)
            actual, failure, completion = 0, None, None
            try:
                if ctx.limits is None:
                    completion = await llm.complete(client, settings, model, msgs, ctx.pacer)
                else:
                    async with ctx.limits.call():  # a provider-wide rate shared with other workers
                        completion = await llm.complete(client, settings, model, msgs, ctx.pacer)
                if completion.tokens_in or completion.tokens_out:
                    actual = ctx.prices.cost_nano(model, completion.tokens_in, completion.tokens_out)
                else:
                    actual = worst  # no usage reported: book the worst case rather than lose track of money
            except llm.CallFailed as exc:
                failure = exc
                # an answer lost in flight may have been generated and billed: book the worst case
                actual = worst if exc.unknown_outcome else 0
            finally:
                ctx.budget.settle(reservation, actual)
        attempt.spent_nano += actual
        if completion is not None:
            attempt.tokens_in += completion.tokens_in
            attempt.tokens_out += completion.tokens_out
            attempt.calls.append(
                Call(
                    model=model,
                    tokens_in=completion.tokens_in,
                    tokens_out=completion.tokens_out,
                    cost_usd=to_usd(actual),
                    outcome="pending",
                )
            )
            return completion
        assert failure is not None
        attempt.calls.append(
            Call(model=model, tokens_in=0, tokens_out=0, cost_usd=to_usd(actual), outcome=f"failed: {failure.cause}")
        )
        if failure.rate_limited:
            waits += 1
            used_up = waits > settings.max_rate_limit_retries
        else:
            retries += 1
            used_up = retries > settings.max_retries
        if not failure.transient or used_up or ctx.stopped:
            tries = sum(c.model == model for c in attempt.calls)
            raise llm.CallFailed(f"{failure.cause}; {tries} attempt(s)", failure.retryable)
        if failure.retry_after is not None:
            ctx.pacer.hold(failure.retry_after)  # every call of the run waits as told
        else:
            await asyncio.sleep(backoff(retries or waits))


async def generate_item(ctx: GenerationContext, client: AsyncOpenAI, item: Item) -> OutcomeRecord | None:
    """Generate one item to a final QA decision; None when no decision was reached (run stopping)."""
    settings = ctx.settings
    started = _now()
    msgs = prompts.messages(item)
    attempt = _Attempt()
    verdict = qa.Verdict(False, "not_attempted", "")
    content: prompts.ItemContent | None = None
    model = settings.model
    retryable = False
    tried = 0
    for number, model in enumerate((settings.model, settings.strong_model), start=1):
        tried = number
        try:
            result = await _call(ctx, client, model, msgs, attempt)
        except llm.CallFailed as exc:
            verdict, retryable = qa.Verdict(False, "provider_error", exc.cause), exc.retryable
            break
        except PipelineError as exc:  # invalid key, quota, unknown model: the whole run stops
            ctx.stop(str(exc), fatal=exc)
            if not attempt.calls:
                return None
            # the first call was paid: its outcome goes to the ledger all the same
            verdict = qa.Verdict(False, verdict.reason, f"{verdict.detail}; escalation stopped: {exc}")
            retryable = True
            break
        except Exception as exc:  # an answer the SDK could not make sense of, say: reject, never lose the item
            detail = llm.redact(f"{type(exc).__name__}: {exc}", settings)[:300]
            verdict, retryable = qa.Verdict(False, "provider_error", f"unexpected answer from {model}: {detail}"), True
            break
        if isinstance(result, str):
            if number == 1:
                if ctx.stopped and not attempt.calls:
                    return None
                # failed attempts may already have been paid: their record goes to the ledger
                verdict, retryable = qa.Verdict(False, "budget" if ctx.stopped else "item_budget", result), True
            else:
                verdict = qa.Verdict(False, verdict.reason, f"{verdict.detail}; escalation skipped: {result}")
                retryable = True
            break
        content, verdict = qa.parse_content(result.text, result.finish_reason, result.refusal)
        if content is not None:
            verdict = qa.check_content(content, item)
        last = attempt.calls[-1]  # a new Call rather than model_copy(update=...), which costs ~15x more
        attempt.calls[-1] = Call(
            model=last.model,
            tokens_in=last.tokens_in,
            tokens_out=last.tokens_out,
            cost_usd=last.cost_usd,
            outcome="pass" if verdict.ok else str(verdict.reason),
        )
        if verdict.ok:
            break
    signature: list[int] = []
    if verdict.ok and content is not None:
        signature = qa.sketch(content.description)
        verdict = ctx.near_copies.claim(item.slug, signature)
    number = tried or 1
    record = OutcomeRecord(
        id=record_id(ctx.run_id, item.slug, number),
        run_id=ctx.run_id,
        slug=item.slug,
        status="success" if verdict.ok else "reject",
        content=content.model_dump() if verdict.ok and content else None,
        sketch=signature if verdict.ok else [],
        error=None if verdict.ok else verdict.error,
        reason=None if verdict.ok else verdict.reason,
        retryable=False if verdict.ok else retryable,
        model=model,
        prompt_template=prompts.TEMPLATE_ID,
        prompt_version=prompts.TEMPLATE_VERSION,
        input_hash=prompts.input_hash(item),
        tokens_in=attempt.tokens_in,
        tokens_out=attempt.tokens_out,
        cost_usd=to_usd(attempt.spent_nano),
        attempt=number,
        escalated=number > 1,
        calls=attempt.calls,
        run_budget_usd=to_usd(ctx.budget.limit),
        offline=settings.offline,
        source_fields=list(prompts.SOURCE_FIELDS),
        started_at=started,
        finished_at=_now(),
    )
    if ctx.ledger is not None:
        # durable before anything else is told; in a thread, so the fsync never stalls this chunk's event
        # loop, and records finishing together share one write and one fsync (group commit)
        await asyncio.to_thread(ctx.ledger.append, record)
    successes = ctx.stats.count(record)
    if record.status == "success" and ctx.on_success is not None:
        ctx.on_success(successes)
    return record


async def generate_chunk(
    ctx: GenerationContext, items: list[Item], concurrency: int, client: AsyncOpenAI | None = None
) -> list[OutcomeRecord]:
    """Generate a chunk of items with at most `concurrency` calls in flight; with its own client unless
    given one. When an item fails, the chunk's other items are cancelled before the error goes up."""
    gate = asyncio.Semaphore(concurrency)
    own = client is None
    caller = llm.make_client(ctx.settings) if client is None else client
    outcomes: list[OutcomeRecord] = []

    async def one(item: Item) -> None:
        async with gate:
            if item.slug in ctx.already:
                ctx.stats.bump("skipped")
                return
            if ctx.stopped:
                ctx.stats.bump("not_attempted")
                return
            record = await generate_item(ctx, caller, item)
            if record is None:
                ctx.stats.bump("not_attempted")
            else:
                outcomes.append(record)

    held = ctx.limits.chunk(concurrency) if ctx.limits is not None else nullcontext()
    try:
        async with held:
            tasks = [asyncio.ensure_future(one(item)) for item in items]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
    finally:
        if own:
            await caller.close()
    return outcomes


def run_chunk(ctx: GenerationContext, items: list[Item], concurrency: int) -> list[OutcomeRecord]:
    """Synchronous entry for one chunk: waits for a chunk slot, then runs in the run's shared event loop."""
    assert ctx.loop is not None
    return ctx.loop.run(lambda client: generate_chunk(ctx, items, concurrency, client), turn=ctx.slots)


def plan_chunks(items: list[Item], settings: Settings, overlap: bool = True) -> tuple[list[list[Item]], int, int]:
    """Split items into chunks; returns (chunks, chunks run in parallel, calls in flight per chunk).
    With `overlap` one more chunk runs than CONCURRENCY needs, each free to use all of it: the run's
    InFlightGate keeps the total at CONCURRENCY, and a chunk's slow last calls no longer leave slots idle.
    Without it (Prefect's global limits hold a chunk's slots for its whole life) the chunks share it out."""
    size = settings.chunk_size
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    needed = -(-settings.concurrency // size)
    if overlap:
        return chunks, max(1, min(len(chunks), needed + 1)), max(1, min(size, settings.concurrency))
    parallel = max(1, min(len(chunks), needed))
    return chunks, parallel, max(1, -(-settings.concurrency // parallel))


def open_generation(
    store: Store, settings: Settings, run_id: str, parallel: int = 1, on_success: Callable[[int], None] | None = None
) -> GenerationContext:
    """A context for generating `run_id`: prior spend of the run, decided slugs, the near-copy index, the ledger."""
    prices = PriceTable(settings.price_table)
    prices.check(settings.model, settings.strong_model)
    checkpoint = current_checkpoint(store)
    decided = set(checkpoint.get("done", {})) | {
        s for s, r in checkpoint.get("rejected", {}).items() if not r.get("retryable")
    }
    prior = read_usage(store)["by_run"].get(run_id, {}).get("cost_nano", 0)
    index = qa.NearCopyIndex()
    for slug, signature in read_sketches(store).iter_rows():  # two columns, not every success's content
        index.add(slug, signature or [])
    return GenerationContext(
        settings=settings,
        run_id=run_id,
        budget=RunBudget(settings.budget_usd, to_usd(prior)),
        prices=prices,
        ledger=None if store.read_only else LedgerWriter(store, run_id),
        near_copies=index,
        already=frozenset(decided),
        on_success=on_success,
        slots=threading.BoundedSemaphore(parallel),
        gate=InFlightGate(settings.concurrency),
    )
