"""A long stage's pulse: items done, rate, time to finish and dollars spent of the budget, told to the
reporter at intervals from a thread of its own, so a stuck run is told from a slow one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from content_pipeline.money import usd

LIVE_EVERY_S = 0.5  # how often a live display (a terminal's progress bar) is redrawn


def duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@dataclass(frozen=True)
class Pulse:
    """Where a stage is: `done` of `total` items after `elapsed_s`, and `spent_usd` of `budget_usd`."""

    stage: str
    done: int
    total: int
    elapsed_s: float
    spent_usd: float
    budget_usd: float
    final: bool = False

    @property
    def rate_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds to finish at the rate so far (None before the first item is done)."""
        return (self.total - self.done) / self.rate_per_s if self.rate_per_s else None

    def line(self) -> str:
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        eta = "ETA -" if self.eta_s is None else f"ETA {duration(self.eta_s)}"
        return (
            f"{self.stage}: {self.done}/{self.total} item(s){share}, {self.rate_per_s:.2f}/s, {eta}, "
            f"${self.spent_usd:.4f} of {usd(self.budget_usd)} spent, {duration(self.elapsed_s)} in"
        )


class Listener(Protocol):
    """Who is told: the reporter (a progress bar when `live`, else a log line each time)."""

    @property
    def live(self) -> bool: ...

    def pulse(self, pulse: Pulse) -> None: ...


class Heartbeat:
    """Tells `listener` the stage's pulse every HEARTBEAT_S (every LIVE_EVERY_S to a live display) while
    the stage runs, and once more when it stops. `read` gives (items done, dollars spent) now."""

    def __init__(
        self,
        stage: str,
        total: int,
        budget_usd: float,
        read: Callable[[], tuple[int, float]],
        listener: Listener,
        every_s: float,
    ) -> None:
        self.stage, self.total, self.budget_usd, self.read, self.listener = stage, total, budget_usd, read, listener
        self.every_s = min(every_s, LIVE_EVERY_S) if listener.live else every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{stage}", daemon=True)
        self._started = 0.0

    def _pulse(self, final: bool = False) -> Pulse:
        done, spent = self.read()
        elapsed = time.monotonic() - self._started
        return Pulse(self.stage, done, self.total, elapsed, spent, self.budget_usd, final)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.listener.pulse(self._pulse())

    def start(self) -> Heartbeat:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.pulse(self._pulse(final=True))
