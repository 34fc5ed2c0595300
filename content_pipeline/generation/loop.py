"""The run's one event loop and client, shared by every chunk, and the gate on calls in flight."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

from content_pipeline.settings import Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

T = TypeVar("T")


class CallGate:
    """At most `limit` calls in flight over every chunk of a run: a semaphore of the run's event loop
    (made anew with each loop), counting what it lets through. An item holds a slot only while it calls."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = self.peak = 0
        self._slots = asyncio.Semaphore(limit)

    def reset(self) -> None:
        """A semaphore for a new event loop (one is bound to the loop it first waits in)."""
        self._slots = asyncio.Semaphore(self.limit)

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self._slots.release()


class ChunkLoop:
    """The run's one event loop, on a thread of its own, with one client, shared by every chunk while any
    chunk runs (started by the first, closed by the last). Chunks keep their own threads (Prefect task
    runs, or a pool's threads), but their calls take turns in one loop and reuse one connection pool: a
    loop, client, SSL context, thread pool and new connections per chunk, and several loops contending for
    the GIL, cost more CPU than the calls themselves."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.gate = CallGate(settings.concurrency)
        self._lock = threading.Lock()
        self._users = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: AsyncOpenAI | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def run(
        self, make: Callable[[AsyncOpenAI], Coroutine[Any, Any, T]], turn: AbstractContextManager[object] | None = None
    ) -> T:
        """Wait for `turn` (a chunk slot; the loop stays up meanwhile), then run `make(client)` in the loop
        and wait for it. It runs in the caller's context (contextvars), as it would under asyncio.run in the
        caller's thread; an exception in the caller cancels it."""
        loop, client = self._enter()
        ended = threading.Event()

        async def guarded() -> T:
            try:
                return await make(client)
            finally:
                ended.set()

        try:
            with turn if turn is not None else nullcontext():
                future = asyncio.run_coroutine_threadsafe(guarded(), loop)
                try:
                    return future.result()
                except BaseException:
                    if future.cancel():  # interrupted while it runs: let it wind down before the loop may close
                        ended.wait(30)
                    raise
        finally:
            self._leave()

    def _enter(self) -> tuple[asyncio.AbstractEventLoop, AsyncOpenAI]:
        from content_pipeline.llm.client import make_client  # the SDK is imported once there is a call to make

        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=self._serve, args=(loop,), name="generation-loop", daemon=True)
                thread.start()
                self.gate.reset()
                self._loop, self._thread, self._client = loop, thread, make_client(self._settings)
            self._users += 1
            assert self._client is not None
            return self._loop, self._client

    def _leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users or self._loop is None:
                return
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = None
            assert thread is not None and client is not None
            try:
                asyncio.run_coroutine_threadsafe(self._close(client), loop).result()
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
                loop.close()

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    @staticmethod
    async def _close(client: AsyncOpenAI) -> None:
        loop = asyncio.get_running_loop()
        await client.close()
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """While generating, the cycle collector leaves alone the objects the process held before (gc.freeze):
    a full collection of a Prefect worker's heap holds the GIL for ~0.2 s, stalling every call's answer."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
