"""The ledger writer: a process's own segment of a run, each record durable before `append` returns."""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass

from content_pipeline.ledger.records import OutcomeRecord
from content_pipeline.store import Store, layout
from content_pipeline.store.host import pid_alive, this_host


@dataclass
class _Pending:
    line: bytes
    done: bool = False
    error: BaseException | None = None


class LedgerWriter:
    """Appends records to this process's own segment of a run; `append` returns once its record is durable.
    Group commit: while one thread writes and fsyncs, records from other threads queue, and the next
    writer takes them all in one write and one fsync (one object on S3)."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.key = layout.ledger_segment(run_id, f"{this_host()}-{os.getpid()}-{secrets.token_hex(4)}")
        self._appender = store.appender(self.key)
        self.records = 0
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False

    def append(self, record: OutcomeRecord) -> None:
        mine = _Pending(record.line())
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
            self._appender.append(b"".join(p.line for p in batch))
        except BaseException as exc:  # every record of the group failed: each caller hears it
            error = exc
        with self._cond:
            for pending in batch:
                pending.done, pending.error = True, error
            self.records += 0 if error else len(batch)
            self._writing = False
            self._cond.notify_all()

    def close(self) -> None:
        self._appender.close()


def writer_gone(key: str) -> bool:
    """True when the segment's writer (`<host>-<pid>-<random>` in its name) is known dead."""
    parts = layout.segment_writer(key).rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    host, pid = parts[0], int(parts[1])
    return host == this_host() and not pid_alive(pid)
