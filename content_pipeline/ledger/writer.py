"""The ledger writer: a process's own segment of a run, each record durable before it is acknowledged."""

from __future__ import annotations

import asyncio
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass

from content_pipeline.errors import LedgerUnwritableError, StoreError
from content_pipeline.ledger.records import OutcomeRecord
from content_pipeline.ledger.rescue import RescueFile, rescue_path
from content_pipeline.store import Store, layout
from content_pipeline.store.host import Holder, this_host

RETRY_S = (0.5, 1.0, 2.0)  # waits before each further try of an append the store refused


def writer_name() -> str:
    """This process's name for a log it writes: `<host>-<pid>-<random>`, so its liveness can be judged."""
    return f"{this_host()}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class _LoopWaiter:
    """A coroutine waiting for its line: its event loop and the future it awaits there."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


_Queued = tuple[bytes, "Future[None] | _LoopWaiter"]


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """In the event loop: every waiter of one group told at once (one wake-up for the group)."""
    for future in futures:
        if future.done():  # (one whose waiter was cancelled)
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(None)


class LedgerWriter:
    """Appends records to this process's own segment of a run, each durable before it is acknowledged.
    Group commit: one writer thread takes every line queued meanwhile into one write and one fsync (one
    object on S3); `submit` queues a line and returns a future that is done once the line is durable,
    `append` waits for it, and a coroutine awaits `write` (its event loop woken once per group). A line
    is written even when whoever submitted it stops waiting (a paid answer is never dropped).

    When the store will not take an append (disk full, access denied, S3 down), it is tried again after
    each of `retry_s`; if it still fails, that group and every record after it go to a local rescue file
    (in `rescue_dir`) instead, and the next run imports the file into the ledger before anything else. No
    answered outcome is dropped. `on_failure(error, final)` hears the first refusal (the run stops putting
    calls in flight at once) and, when the retries fail too, the final failure. Without a `rescue_dir` the
    final failure is raised to the caller instead. `key` is another log to write (the run's intents).
    `guard` is called right before each append (a group), in the writer thread: a holder's lease check,
    whose LeaseLostError fails that group and every later one, written nowhere (the new holder writes them)."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        rescue_dir: str | None = None,
        on_failure: Callable[[LedgerUnwritableError, bool], None] | None = None,
        retry_s: tuple[float, ...] = RETRY_S,
        key: str | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.guard = store, guard
        self.key = key or layout.ledger_segment(run_id, writer_name())
        self._appender = store.appender(self.key)
        self.records = 0
        self.rescued = 0
        self.failure: LedgerUnwritableError | None = None
        self._rescue_dir, self._on_failure, self._retry_s = rescue_dir, on_failure, retry_s
        self._rescue: RescueFile | None = None
        self._lines: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def append(self, record: OutcomeRecord) -> None:
        self.append_line(record.line())

    def append_line(self, line: bytes) -> None:
        """Append one signed line; returns once it is durable (or kept in the rescue file)."""
        self.submit(line).result()

    def submit(self, line: bytes) -> Future[None]:
        """Queue one signed line for the next group; the future is done once it is durable."""
        done: Future[None] = Future()
        self._put(line, done)
        return done

    async def write(self, line: bytes) -> None:
        """Append one signed line from a coroutine: the event loop waits (no thread held), and is woken once
        for every line of its group."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._put(line, _LoopWaiter(loop, waiter))
        await waiter

    def _put(self, line: bytes, waiter: Future[None] | _LoopWaiter) -> None:
        with self._lock:  # each writer thread has a queue of its own: a closed writer's never takes new lines
            if self._thread is None:
                self._lines = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._serve, args=(self._lines,), name="ledger-writer")
                self._thread.daemon = True
                self._thread.start()
            self._lines.put((line, waiter))

    def drain(self) -> None:
        """Wait until every line queued so far is written (or has failed)."""
        with suppress(Exception):  # a failure was the business of whoever queued the line
            self.submit(b"").result()

    def _serve(self, lines: queue.SimpleQueue[_Queued | None]) -> None:
        """The writer thread: each group is everything queued by the time the last group was durable."""
        while (first := lines.get()) is not None:
            batch, stopping = [first], False
            while not stopping:
                try:
                    queued = lines.get_nowait()
                except queue.Empty:
                    break
                stopping = queued is None
                batch += [queued] if queued is not None else []
            self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[_Queued]) -> None:
        threads = [w for _, w in batch if isinstance(w, Future) and w.set_running_or_notify_cancel()]
        loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, w in batch:
            if isinstance(w, _LoopWaiter):
                loops.setdefault(w.loop, []).append(w.future)
        data = b"".join(line for line, _ in batch)
        error: BaseException | None = None
        try:
            if data:  # (a batch of drain markers only writes nothing)
                self._durable(data, sum(1 for line, _ in batch if line))
        except BaseException as exc:  # every record of the group failed: each caller hears it
            error = exc
        for done in threads:
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(None)
        for loop, futures in loops.items():
            with suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                loop.call_soon_threadsafe(_settle, futures, error)

    def _durable(self, data: bytes, count: int) -> None:
        """Append to the ledger, tried again after each of `retry_s`; to the rescue file once the ledger
        has failed for good. The first refusal stops the run's new calls at once (`on_failure` hears a
        stop, then the failure if it lasts)."""
        if self.failure is None:
            for tried, wait in enumerate((*self._retry_s, None)):
                try:
                    if self.guard is not None:
                        self.guard()
                    self._appender.append(data)
                    self.records += count
                    return
                except StoreError as exc:
                    if wait is None:
                        self._failed(exc)
                        break
                    if tried == 0 and self._on_failure is not None:
                        refused = LedgerUnwritableError(f"the ledger ({self.key}) refused an append: {exc}")
                        self._on_failure(refused, False)
                    time.sleep(wait)
        self._rescued(data, count)

    def _failed(self, cause: StoreError) -> None:
        if self._rescue_dir is None:
            raise LedgerUnwritableError(f"the ledger ({self.key}) cannot be appended: {cause}") from None
        path = rescue_path(self._rescue_dir, self.store, self.key)
        self.failure = LedgerUnwritableError(
            f"the ledger ({self.key}) cannot be appended: {cause}; every answered outcome is kept in the "
            f"rescue file {path}, which the next run imports into the ledger first"
        )
        if self._on_failure is not None:
            self._on_failure(self.failure, True)

    def _rescued(self, data: bytes, count: int) -> None:
        assert self._rescue_dir is not None and self.failure is not None
        try:
            if self._rescue is None:
                self._rescue = RescueFile(rescue_path(self._rescue_dir, self.store, self.key))
            self._rescue.append(data)
        except OSError as exc:
            raise LedgerUnwritableError(
                f"{self.failure}; and the rescue file cannot be written either: {exc.strerror}"
            ) from None
        self.rescued += count

    def close(self, discard: bool = False) -> None:
        """Write what is queued, then close the log; with `discard`, remove it (a log whose every line has
        served its purpose)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._lines.put(None)
        if thread is not None:
            thread.join()
        with suppress(StoreError):  # a folder or S3 appender holds nothing unwritten
            if discard:
                self._appender.discard()
            else:
                self._appender.close()
        if self._rescue is not None:
            self._rescue.close()


def writer_process(writer: str) -> tuple[str, int] | None:
    """(host, pid) of a writer named `<host>-<pid>-<random>`; None for a name that is not one."""
    parts = writer.rsplit("-", 2)
    return (parts[0], int(parts[1])) if len(parts) == 3 and parts[1].isdigit() else None


def writer_gone(key: str) -> bool:
    """True when the segment's writer (`<host>-<pid>-<random>` in its name) is known dead."""
    process = writer_process(layout.segment_writer(key))
    return process is None or Holder(*process, "").gone()
