"""Money: the price table, worst-case reservations before a call and settlement after it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from content_pipeline.errors import BadInputError
from content_pipeline.settings import ModelPrice

NANO = 1_000_000_000  # budgets are kept in integer nano-dollars: no float drift in sums


def to_nano(usd: float) -> int:
    return round(usd * NANO)


def to_usd(nano: int) -> float:
    return nano / NANO


def usd(value: float) -> str:
    """Money for a message: cents from a dollar up, tenths of a cent below (a $0.002 budget is not "$0.00")."""
    return f"${value:.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


class PriceTable:
    """USD per token by model; an unknown model is refused before any spend."""

    def __init__(self, prices: dict[str, ModelPrice]) -> None:
        self.prices = prices

    def check(self, *models: str) -> None:
        for model in models:
            if model not in self.prices:
                known = ", ".join(sorted(self.prices))
                raise BadInputError(f"model {model!r} has no price in PRICE_TABLE (priced: {known})")

    def cost_nano(self, model: str, tokens_in: int, tokens_out: int) -> int:
        price = self.prices[model]
        return round((tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) * NANO / 1_000_000)


@dataclass
class Reservation:
    """Money set aside for one call, settled with the provider's reported usage."""

    nano: int
    settled: bool = False


class BudgetExhausted(Exception):
    """A reservation would take the run past its budget."""


class RunBudget:
    """A run's hard ceiling: reserve the worst case before a call, settle the actual after.
    Thread-safe, so every chunk of a run shares one ceiling."""

    def __init__(self, limit_usd: float, spent_usd: float = 0.0) -> None:
        self.limit = to_nano(limit_usd)
        self.spent = to_nano(spent_usd)
        self.reserved = 0
        self._lock = threading.Lock()

    def reserve(self, nano: int) -> Reservation:
        with self._lock:
            if self.spent + self.reserved + nano > self.limit:
                raise BudgetExhausted(
                    f"run budget {usd(to_usd(self.limit))} reached: spent ${to_usd(self.spent):.4f}, "
                    f"in flight ${to_usd(self.reserved):.4f}, next call needs up to ${to_usd(nano):.4f}"
                )
            self.reserved += nano
            return Reservation(nano)

    def settle(self, reservation: Reservation, actual_nano: int) -> None:
        """Release the reservation and book the actual cost (which a call's max_tokens caps)."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self.reserved -= reservation.nano
            self.spent += actual_nano

    @property
    def spent_usd(self) -> float:
        return to_usd(self.spent)

    @property
    def remaining_usd(self) -> float:
        return to_usd(self.limit - self.spent - self.reserved)
