"""A run's budget: the worst case reserved before a call, settled with the reported usage after it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from content_pipeline.money import to_nano, to_usd, usd


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
