"""What every chunk of one run's generation shares, and how a run's items are cut into chunks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from content_pipeline.claims.pending import pending_slugs
from content_pipeline.errors import LedgerUnwritableError, PipelineError
from content_pipeline.generation.budget import RunBudget
from content_pipeline.generation.loop import ChunkLoop
from content_pipeline.generation.nearcopy import NearCopyIndex
from content_pipeline.generation.prompts import new_canary
from content_pipeline.generation.stats import RunStats
from content_pipeline.generation.templates import DEFAULT, TemplateSet, active_templates
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.inflight import booked_at_crash
from content_pipeline.ledger.intents import IntentLog
from content_pipeline.ledger.writer import LedgerWriter, writer_name
from content_pipeline.llm.pacing import Pacer
from content_pipeline.money import PriceTable, to_usd
from content_pipeline.settings import Settings
from content_pipeline.store import Store, layout
from content_pipeline.views.checkpoint import decided
from content_pipeline.views.consolidate import current_checkpoint
from content_pipeline.views.snapshot import read_sketches, read_usage


class SharedLimits(Protocol):
    """Provider limits shared with other processes (the flow layer backs them with Prefect's)."""

    def chunk(self, slots: int) -> AbstractAsyncContextManager[None]:
        """Hold `slots` of the shared in-flight limit while a chunk runs."""
        ...

    def call(self) -> AbstractAsyncContextManager[None]:
        """One request's share of the shared rate limit."""
        ...


@dataclass
class GenerationContext:
    """Everything the chunks of one run share."""

    settings: Settings
    run_id: str
    budget: RunBudget
    prices: PriceTable
    ledger: LedgerWriter | None
    near_copies: NearCopyIndex
    intents: IntentLog | None = None
    templates: TemplateSet = field(default_factory=lambda: TemplateSet(((DEFAULT, 1),)))
    already: frozenset[str] = frozenset()
    on_success: Callable[[int], None] | None = None
    limits: SharedLimits | None = None
    pacer: Pacer = field(default_factory=Pacer)
    slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(1))
    stats: RunStats = field(default_factory=RunStats)
    canary: str = field(default_factory=new_canary, repr=False)  # in every system message of the run, nowhere else
    loop: ChunkLoop = field(init=False)
    stop_reason: str | None = None
    fatal: PipelineError | None = None
    primary_down: str | None = None  # why every call now goes to FALLBACK_MODEL (the primary's failure)
    fallback: Settings | None = field(init=False)  # FALLBACK_MODEL's settings, made once (None: no fallback)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.loop = ChunkLoop(self.settings)
        self.fallback = self.settings.fallback()
        if self.settings.offline:  # the in-process model has no rate limits to be gentle with
            self.pacer.ramp.learned()

    def fall_back(self, cause: str) -> None:
        """The primary provider failed past its retries: every later call of the run goes to the fallback."""
        with self._lock:
            self.primary_down = self.primary_down or cause

    def stop(self, reason: str, fatal: PipelineError | None = None, first: bool = False) -> None:
        """Stop claiming new work: run budget reached, quota gone, a key that does not work, a store that
        takes no more. `first`: this failure is the one to name even if another came before it (outcomes
        kept in a rescue file, which the operator must hear of)."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            if fatal is not None and (self.fatal is None or first):
                self.fatal = fatal

    def close(self) -> None:
        """Close the ledger segment and the intents log (removed when every intent was settled in the
        ledger; kept when outcomes went to a rescue file, to be settled when it is imported)."""
        if self.ledger is not None:
            self.ledger.close()
        if self.intents is not None:
            self.intents.close(keep=self.ledger is None or self.ledger.rescued > 0)

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None


def plan_chunks(items: list[Item], settings: Settings, overlap: bool = True) -> tuple[list[list[Item]], int, int]:
    """Split items into chunks; returns (chunks, chunks run in parallel, calls in flight per chunk).
    With `overlap` one more chunk runs than CONCURRENCY needs, each free to use all of it: the run's
    CallGate keeps the total at CONCURRENCY, and a chunk's slow last calls no longer leave slots idle.
    Without it (Prefect's global limits hold a chunk's slots for its whole life) the chunks share it out."""
    size = settings.chunk_size
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    needed = -(-settings.concurrency // size)
    if overlap:
        return chunks, max(1, min(len(chunks), needed + 1)), max(1, min(size, settings.concurrency))
    parallel = max(1, min(len(chunks), needed))
    return chunks, parallel, max(1, -(-settings.concurrency // parallel))


def open_generation(
    store: Store,
    settings: Settings,
    run_id: str,
    parallel: int = 1,
    on_success: Callable[[int], None] | None = None,
    retry: frozenset[str] = frozenset(),
) -> GenerationContext:
    """A context for generating `run_id`: prior spend of the run, decided slugs (the rejects a replay
    generates again, `retry`, left out), the near-copy index, the ledger."""
    prices = PriceTable(settings.price_table)
    prices.check(settings.model, settings.strong_model)
    already = decided(current_checkpoint(store), retry) | pending_slugs(store)
    usage = read_usage(store)
    # what the run spent before (resumed under its id), and what its crashed processes may have been billed
    prior = usage["by_run"].get(run_id, {}).get("cost_nano", 0) + booked_at_crash(store, usage).of(run_id)
    index = NearCopyIndex()
    for slug, signature in read_sketches(store).iter_rows():  # two columns, not every success's content
        index.add(slug, signature or [])
    ctx = GenerationContext(
        settings=settings,
        run_id=run_id,
        budget=RunBudget(settings.budget_usd, to_usd(prior)),
        prices=prices,
        ledger=None,
        near_copies=index,
        already=frozenset(already),
        templates=active_templates(store),
        on_success=on_success,
        slots=threading.BoundedSemaphore(parallel),
    )
    if not store.read_only:  # a ledger that will not take an append stops the run's calls at once

        def failed(exc: LedgerUnwritableError, final: bool) -> None:
            ctx.stop(str(exc), fatal=exc if final else None, first=final)

        writer = writer_name()
        ctx.ledger = LedgerWriter(store, run_id, settings.rescue_dir, failed, key=layout.ledger_segment(run_id, writer))
        ctx.intents = IntentLog(store, run_id, writer, lambda exc, final: ctx.stop(str(exc)))
    return ctx
