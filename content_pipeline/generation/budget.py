"""A run's budget: the worst case reserved before a call, settled with the reported usage after it; the worst
case of a call, an item and a batch, from the price table."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from content_pipeline.configs import PricingConfig
from content_pipeline.generation import prompts
from content_pipeline.generation.templates import TemplateSet
from content_pipeline.intake.catalogue import Item
from content_pipeline.money import PriceTable, to_nano, to_usd, usd


@dataclass
class Reservation:
    """Money set aside for one call, settled with the provider's reported usage."""

    nano: int
    settled: bool = False


class BudgetExhausted(Exception):
    """A reservation would take the run past its budget with nothing else in flight."""


class RunBudget:
    """A run's hard ceiling: reserve the worst case before a call, settle the actual after. When the worst
    case of one more call does not fit while others are in flight, it waits for one of them to settle
    (fewer calls go in flight); it stops the run only when it does not fit with nothing in flight.
    Thread-safe, so every chunk of a run shares one ceiling."""

    def __init__(self, limit_usd: float, spent_usd: float = 0.0) -> None:
        self.limit = to_nano(limit_usd)
        self.spent = to_nano(spent_usd)
        self.reserved = 0
        self.waited = 0  # reservations that waited for a call in flight to settle
        self._lock = threading.Lock()
        self._waiters: list[asyncio.Future[None]] = []

    def reserve(self, nano: int) -> Reservation:
        """Reserve now, or BudgetExhausted (for callers that cannot wait)."""
        with self._lock:
            reservation = self._take(nano)
            if reservation is None:
                raise BudgetExhausted(self._exhausted(nano))
            return reservation

    async def reserve_in_turn(self, nano: int) -> Reservation:
        """Reserve `nano`, waiting while calls in flight hold the money it needs (each wait ends when one of
        them settles, and every call in flight ends within its timeout); BudgetExhausted when it does not fit
        with nothing in flight."""
        first = True
        while True:
            with self._lock:
                reservation = self._take(nano)
                if reservation is not None:
                    return reservation
                if self.reserved == 0:
                    raise BudgetExhausted(self._exhausted(nano))
                self.waited += first
                first = False
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
            await waiter

    def _take(self, nano: int) -> Reservation | None:
        """The reservation when `nano` fits now (under the lock), else None."""
        if self.spent + self.reserved + nano > self.limit:
            return None
        self.reserved += nano
        return Reservation(nano)

    def _exhausted(self, nano: int) -> str:
        left = self.limit - self.spent - self.reserved
        flight = f", {usd(to_usd(self.reserved))} held by the calls in flight" if self.reserved else ""
        return (
            f"run budget {usd(to_usd(self.limit))} reached: spent {usd(to_usd(self.spent))}{flight}, "
            f"{usd(to_usd(max(left, 0)))} left, the next call needs up to {usd(to_usd(nano))}"
        )

    def settle(self, reservation: Reservation, actual_nano: int) -> None:
        """Release the reservation and book the actual cost (which a call's max_tokens caps); the calls
        waiting for money look again."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self.reserved -= reservation.nano
            self.spent += actual_nano
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    @property
    def spent_usd(self) -> float:
        return to_usd(self.spent)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def call_worst_nano(
    prices: PriceTable, settings: PricingConfig, model: str, msgs: list[dict[str, str]], batch: bool = False
) -> int:
    """The most one call can cost: the prompt's token bound plus MAX_OUTPUT_TOKENS, at the model's price
    (through the Batch API, its batch price; where cache writes cost more than input, every prompt token at
    the cache-write price)."""
    bound = prompts.prompt_tokens_upper_bound(msgs)
    written = bound if prices.prices[model].write_per_mtok > prices.prices[model].input_per_mtok else 0
    return prices.cost_nano(model, bound, settings.max_output_tokens, batch=batch, written=written)


def item_worst_nano(prices: PriceTable, settings: PricingConfig, msgs: list[dict[str, str]]) -> int:
    """The most one item can cost: a call to MODEL plus an escalation to STRONG_MODEL (in batch mode, at the
    batch price; an escalation made at once, BATCH_ESCALATE=sync, at the full price)."""
    batch = settings.generation_mode == "batch"
    escalation_batched = batch and settings.batch_escalate == "batch"
    return call_worst_nano(prices, settings, settings.model, msgs, batch) + call_worst_nano(
        prices, settings, settings.strong_model, msgs, escalation_batched
    )


def batch_worst_nano(settings: PricingConfig, templates: TemplateSet, items: list[Item]) -> int:
    """The most a batch can cost: each item's worst case with the prompt its template makes."""
    prices = PriceTable(settings.price_table)
    return sum(
        item_worst_nano(prices, settings, prompts.messages(item, templates.for_slug(item.slug))) for item in items
    )
