"""Slow start: until the provider's rate-limit headers are read, a run's calls ramp up instead of all going at once."""

from __future__ import annotations

import asyncio
import threading
import time

ENABLED = True  # read when a Pacer is made; tests and the bench turn it off to measure what it saves
INITIAL_WINDOW = 1  # calls in flight before any answer
OPEN_AT = 1024  # a window this wide limits nothing: the ramp is over
POLL_S = 0.005  # a waiting call looks again this often (the window is shared by threads and event loops)
MAX_WAIT_S = 30.0  # no call waits longer for the window: then it goes anyway

CLEAN, RATE_LIMITED, OTHER = "clean", "rate_limited", "other"


class SlowStart:
    """A window on calls in flight, as TCP's slow start: it starts at INITIAL_WINDOW, doubles with each clean
    answer and halves with each 429, until the provider's rate-limit headers are read (`learned`) or it is
    OPEN_AT wide; from then on it limits nothing (the headers pace the run). Thread-safe."""

    def __init__(self, enabled: bool = True, window: int = INITIAL_WINDOW, open_at: int = OPEN_AT) -> None:
        self._lock = threading.Lock()
        self.ramping = enabled
        self.window = max(1, window)
        self.open_at = open_at
        self.in_flight = 0  # calls holding a slot of the window
        self.waited_calls = 0
        self.waited_s = 0.0

    def try_take(self, force: bool = False) -> bool | None:
        """A slot for one call: True when taken, False when the window is full (and not `force`), None when
        the ramp is over (nothing to give back)."""
        with self._lock:
            if not self.ramping:
                return None
            if self.in_flight >= self.window and not force:
                return False
            self.in_flight += 1
            return True

    async def enter(self, max_wait_s: float = MAX_WAIT_S) -> bool:
        """Wait (at most `max_wait_s`) for a slot; True when one was taken, to be given back by `release`."""
        took = self.try_take()
        if took is not False:
            return bool(took)
        started = time.monotonic()
        deadline = started + max_wait_s
        while took is False:
            await asyncio.sleep(POLL_S)
            took = self.try_take(force=time.monotonic() >= deadline)
        with self._lock:
            self.waited_calls += 1
            self.waited_s += time.monotonic() - started
        return bool(took)

    def release(self, took: bool, outcome: str = OTHER) -> None:
        """A call ended: its slot (when it took one) given back; while ramping, a clean answer doubles the
        window and a 429 halves it (other failures leave it as it is)."""
        with self._lock:
            if took:
                self.in_flight = max(0, self.in_flight - 1)
            if not self.ramping:
                return
            if outcome == CLEAN:
                self.window *= 2
                self.ramping = self.window < self.open_at
            elif outcome == RATE_LIMITED:
                self.window = max(1, self.window // 2)

    def learned(self) -> None:
        """The provider's rate-limit headers have been read: the ramp no longer limits."""
        with self._lock:
            self.ramping = False
