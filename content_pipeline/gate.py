"""A limit on calls in flight shared by every chunk of a run, whatever thread and event loop each chunk runs in."""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class InFlightGate:
    """An asyncio semaphore across event loops: at most `limit` holders in all loops together. A released
    slot goes straight to the oldest waiter, in whichever loop it waits (at once when that is the loop
    releasing it, else through the waiter's loop)."""

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
                    handed = True  # a release took us off the queue
            # The slot is ours to pass on only if it reached us; a cancelled waiter's slot is passed on by
            # the hand-over (`_hand`, or `release` skipping it), never twice.
            if handed and waiter.done() and not waiter.cancelled():
                self.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Give a slot back: to the oldest live waiter, or to the pool."""
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        while True:
            with self._lock:
                if not self._waiters:
                    self.free += 1
                    return
                loop, waiter = self._waiters.popleft()
            if loop is here:
                if waiter.done():  # cancelled while queued: the next waiter gets the slot
                    continue
                waiter.set_result(None)
                return
            try:
                loop.call_soon_threadsafe(self._hand, waiter)
            except RuntimeError:  # its event loop has closed: the next waiter gets the slot
                continue
            return

    def _hand(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # cancelled on its way: pass the slot on
            self.release()
        else:
            waiter.set_result(None)
