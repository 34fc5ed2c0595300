"""A chunk of items: generated concurrently in the run's event loop, entered from any thread."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from content_pipeline.generation.context import GenerationContext
from content_pipeline.generation.item import generate_item
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.records import OutcomeRecord

if TYPE_CHECKING:
    from openai import AsyncOpenAI


async def generate_chunk(
    ctx: GenerationContext, items: list[Item], concurrency: int, client: AsyncOpenAI
) -> list[OutcomeRecord]:
    """Generate a chunk of items with at most `concurrency` of them under way. When an item fails, the
    chunk's other items are cancelled before the error goes up."""
    gate = asyncio.Semaphore(concurrency)
    outcomes: list[OutcomeRecord] = []

    async def one(item: Item) -> None:
        async with gate:
            if item.slug in ctx.already:
                ctx.stats.bump("skipped")
                return
            if ctx.stopped:
                ctx.stats.bump("not_attempted")
                return
            record = await generate_item(ctx, client, item)
            if record is None:
                ctx.stats.bump("not_attempted")
            else:
                outcomes.append(record)

    async with ctx.limits.chunk(concurrency) if ctx.limits is not None else nullcontext():
        tasks = [asyncio.ensure_future(one(item)) for item in items]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    return outcomes


def run_chunk(ctx: GenerationContext, items: list[Item], concurrency: int) -> list[OutcomeRecord]:
    """Synchronous entry for one chunk: waits for a chunk slot, then runs in the run's shared event loop."""
    return ctx.loop.run(lambda client: generate_chunk(ctx, items, concurrency, client), turn=ctx.slots)


@dataclass(frozen=True)
class ChunkJob:
    """One chunk of a run's generation, to be run on any thread; returns how many outcomes it recorded."""

    ctx: GenerationContext
    items: list[Item]
    concurrency: int

    def __call__(self) -> int:
        return len(run_chunk(self.ctx, self.items, self.concurrency))
