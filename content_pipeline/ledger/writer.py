"""The ledger writer: a process's own segment of a run, each record durable before `append` returns."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from content_pipeline.errors import LedgerUnwritableError, StoreError
from content_pipeline.ledger.records import OutcomeRecord
from content_pipeline.ledger.rescue import RescueFile, rescue_path
from content_pipeline.store import Store, layout
from content_pipeline.store.host import pid_alive, this_host

RETRY_S = (0.5, 1.0, 2.0)  # waits before each further try of an append the store refused


def writer_name() -> str:
    """This process's name for a log it writes: `<host>-<pid>-<random>`, so its liveness can be judged."""
    return f"{this_host()}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass
class _Pending:
    line: bytes
    done: bool = False
    error: BaseException | None = None


class LedgerWriter:
    """Appends records to this process's own segment of a run; `append` returns once its record is durable.
    Group commit: while one thread writes and fsyncs, records from other threads queue, and the next
    writer takes them all in one write and one fsync (one object on S3).

    When the store will not take an append (disk full, access denied, S3 down), it is tried again after
    each of `retry_s`; if it still fails, that group and every record after it go to a local rescue file
    (in `rescue_dir`) instead, and the next run imports the file into the ledger before anything else. No
    answered outcome is dropped. `on_failure(error, final)` hears the first refusal (the run stops putting
    calls in flight at once) and, when the retries fail too, the final failure. Without a `rescue_dir` the
    final failure is raised to the caller instead. `key` is another log to write (the run's intents)."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        rescue_dir: str | None = None,
        on_failure: Callable[[LedgerUnwritableError, bool], None] | None = None,
        retry_s: tuple[float, ...] = RETRY_S,
        key: str | None = None,
    ) -> None:
        self.store = store
        self.key = key or layout.ledger_segment(run_id, writer_name())
        self._appender = store.appender(self.key)
        self.records = 0
        self.rescued = 0
        self.failure: LedgerUnwritableError | None = None
        self._rescue_dir, self._on_failure, self._retry_s = rescue_dir, on_failure, retry_s
        self._rescue: RescueFile | None = None
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False

    def append(self, record: OutcomeRecord) -> None:
        self.append_line(record.line())

    def append_line(self, line: bytes) -> None:
        """Append one signed line; returns once it is durable (or kept in the rescue file)."""
        mine = _Pending(line)
        batch: list[_Pending] = []
        with self._cond:
            self._queue.append(mine)
            while self._writing and not mine.done:
                self._cond.wait()
            if not mine.done:  # nobody is writing: write everything queued, ours included
                self._writing = True
                batch, self._queue = self._queue, []
        if batch:
            self._write(batch)
        if mine.error is not None:
            raise mine.error

    def _write(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            self._durable(b"".join(p.line for p in batch), len(batch))
        except BaseException as exc:  # every record of the group failed: each caller hears it
            error = exc
        with self._cond:
            for pending in batch:
                pending.done, pending.error = True, error
            self._writing = False
            self._cond.notify_all()

    def _durable(self, data: bytes, count: int) -> None:
        """Append to the ledger, tried again after each of `retry_s`; to the rescue file once the ledger
        has failed for good. The first refusal stops the run's new calls at once (`on_failure` hears a
        stop, then the failure if it lasts)."""
        if self.failure is None:
            for tried, wait in enumerate((*self._retry_s, None)):
                try:
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
        """Close the log; with `discard`, remove it (a log whose every line has served its purpose)."""
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
    return process is None or (process[0] == this_host() and not pid_alive(process[1]))
