"""A limit on calls in flight shared by every chunk of a run, though each chunk has its own thread and event loop."""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class InFlightGate:
    """An asyncio semaphore across event loops: at most `limit` holders in all loops together. A released
    slot goes straight to the oldest waiter, in whichever loop it waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.free = limit
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.free > 0 and not self._waiters:
                self.free -= 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove((loop, waiter))
                    handed = False
                except ValueError:
                    handed = True  # the slot was already on its way to us: pass it on
            if handed:
                self.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, or to the pool."""
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand, waiter)
                except RuntimeError:  # its event loop has closed: the next waiter gets the slot
                    continue
                return
            self.free += 1

    def _hand(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self.release()
        else:
            waiter.set_result(None)
