"""Pacing calls to the provider: a slow start until its rate-limit headers are read, then those headers slow
the run down before it answers 429; when it does, every call of the run waits as told."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from content_pipeline.llm import slowstart
from content_pipeline.llm.slowstart import CLEAN, OTHER, RATE_LIMITED, SlowStart

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
LOW_WATER = 0.1  # pace once less than this share of a limit remains


def parse_duration(text: str | None) -> float | None:
    """Seconds in an x-ratelimit-reset-* value (`20ms`, `1.5s`, `6m0s`, `1h2m`); None when unreadable."""
    if not text:
        return None
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """What a 429 or 503 asks the client to wait: retry-after-ms, then retry-after (seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def _int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(float(headers[name]))
    except (KeyError, ValueError):
        return None


@dataclass
class PacerStats:
    """How much the pacer slowed the run, for the report."""

    paced_calls: int = 0
    paced_s: float = 0.0
    told_to_wait: int = 0
    ramped_calls: int = 0  # calls that waited for the slow start's window
    ramped_s: float = 0.0
    answers: int = 0  # answers read (any status)
    headers: bool = False  # whether any answer carried x-ratelimit-* headers


@dataclass
class Flight:
    """One call under `Pacer.turn()`: how it ended, which the slow start learns from."""

    outcome: str = OTHER

    def answered(self, ok: bool, rate_limited: bool = False) -> None:
        self.outcome = CLEAN if ok else RATE_LIMITED if rate_limited else OTHER


class Pacer:
    """Shared by every chunk of a run (threads, each with its own event loop). Each call goes under `turn()`:
    until the provider's rate-limit headers are read, a slow start's window bounds the calls in flight (1,
    doubling with each clean answer); then `wait()` spaces calls out when the headers say a limit is nearly
    used up, and holds every call while a Retry-After is running. `slow_start` None: slowstart.ENABLED."""

    def __init__(self, slow_start: bool | None = None) -> None:
        self.ramp = SlowStart(slowstart.ENABLED if slow_start is None else slow_start)
        self._lock = threading.Lock()
        self.interval = 0.0  # seconds between calls while pacing; 0 = no pacing
        self.next_at = 0.0
        self.pause_until = 0.0
        self.tokens_per_call = 0.0
        self.stats = PacerStats()

    def observe(self, headers: Mapping[str, str], tokens: int = 0) -> None:
        """Learn from a response's x-ratelimit-* headers (any status)."""
        intervals = [0.0]
        known = False
        with self._lock:
            if tokens:
                self.tokens_per_call = tokens if not self.tokens_per_call else 0.9 * self.tokens_per_call + 0.1 * tokens
            per_call = {"requests": 1.0, "tokens": max(self.tokens_per_call, 1.0)}
            for name in ("requests", "tokens"):
                limit = _int(headers, f"x-ratelimit-limit-{name}")
                remaining = _int(headers, f"x-ratelimit-remaining-{name}")
                known = known or bool(limit)
                if not limit or remaining is None or remaining > limit * LOW_WATER + per_call[name]:
                    continue
                # nearly used up: go no faster than the limit refills (per minute), so the provider never says 429
                intervals.append(60.0 * per_call[name] / limit)
            self.interval = max(intervals)
            self.stats.answers += 1
            self.stats.headers = self.stats.headers or known
        if known:  # after the interval is set: the calls the ramp held go paced by it
            self.ramp.learned()

    def hold(self, seconds: float) -> None:
        """The provider said wait (Retry-After): every call of the run waits that long."""
        with self._lock:
            self.pause_until = max(self.pause_until, time.monotonic() + seconds)
            self.stats.told_to_wait += 1

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[Flight]:
        """One call's turn: a slot of the slow start's window (while it ramps), then `wait()`; the slot is
        given back when the block ends, with what the caller told the flight of the answer."""
        took = await self.ramp.enter()
        flight = Flight()
        try:
            await self.wait()
            yield flight
        finally:
            self.ramp.release(took, flight.outcome)
            self.stats.ramped_calls, self.stats.ramped_s = self.ramp.waited_calls, self.ramp.waited_s

    async def wait(self) -> None:
        """Wait for this call's turn."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self.pause_until, self.next_at if self.interval else now)
            if self.interval:
                self.next_at = start + self.interval
            if start > now:
                self.stats.paced_calls += 1
                self.stats.paced_s += start - now
        if start > now:
            await asyncio.sleep(start - now)


def backoff(retry: int, base: float = 0.5, cap: float = 8.0) -> float:
    """Exponential backoff with full jitter before retry number `retry` (1, 2, ...)."""
    return random.uniform(base / 2, min(cap, base * 2 ** (retry - 1)))
