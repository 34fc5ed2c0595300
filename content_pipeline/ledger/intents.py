"""Intents: before each call, a durable line that it is going out and its worst case; its outcome settles it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime

from content_pipeline.errors import LedgerUnwritableError
from content_pipeline.ledger.checksum import sign
from content_pipeline.ledger.writer import RETRY_S, LedgerWriter
from content_pipeline.store import Store, layout


def intent_line(record_id: str, call: int, run_id: str, slug: str, model: str, worst_nano: int) -> bytes:
    """Call `call` of the outcome `record_id` is going out, and the most it can cost."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    body = {"intent": record_id, "call": call, "run_id": run_id, "slug": slug, "model": model}
    return sign(json.dumps({**body, "worst_nano": worst_nano, "at": at}, separators=(",", ":")).encode())


def void_line(record_id: str, call: int, cause: str) -> bytes:
    """Call `call` of `record_id` was answered with an error that costs nothing, and it has no record."""
    return sign(json.dumps({"void": record_id, "call": call, "cause": cause[:200]}, separators=(",", ":")).encode())


class IntentLog:
    """One writer's intents for a run, beside its ledger segment (`intents/<run>/<writer>.signed.jsonl`).
    `going_out` returns once its line is durable; the call is sent after that. Lines queued together share
    one write (group commit, as outcomes do). The call's outcome record settles it by the record's id;
    `void` settles a call announced and then not sent, or answered with an error that leaves no record.
    When every intent is settled at `close`, the log is removed: only a writer that crashed (or was
    cancelled) with calls in flight leaves one, and the views book its unsettled calls at their worst
    case. A store that will not take an intent raises LedgerUnwritableError: the call is not sent."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        writer: str,
        on_failure: Callable[[LedgerUnwritableError, bool], None] | None = None,
        retry_s: tuple[float, ...] = RETRY_S,
    ) -> None:
        self.run_id = run_id
        self.key = layout.intents_log(run_id, writer)
        self._log = LedgerWriter(store, run_id, None, on_failure, retry_s, key=self.key)
        self._open: dict[str, int] = {}  # record id -> its calls sent and not yet settled
        self._lock = threading.Lock()

    async def going_out(self, record_id: str, call: int, slug: str, model: str, worst_nano: int) -> None:
        """The intent of call `call` of `record_id`, durable when this returns: the call may be sent then
        (LedgerUnwritableError when the store will not take it)."""
        with self._lock:  # counted at once: a log whose intent failed is kept, never removed too early
            self._open[record_id] = self._open.get(record_id, 0) + 1
        await self._log.write(intent_line(record_id, call, self.run_id, slug, model, worst_nano))

    def settled(self, record_id: str) -> None:
        """The outcome record `record_id` is durable in the ledger: every call of it is settled."""
        with self._lock:
            self._open.pop(record_id, None)

    def void(self, record_id: str, call: int, cause: str) -> Future[None]:
        """Settle a call that cost nothing and has no record (not sent, or an error answer), once the void
        is durable; if the store will not take it, the call stays open and is booked at its worst case (the
        books err high, never low)."""
        done = self._log.submit(void_line(record_id, call, cause))
        done.add_done_callback(lambda f: self._voided(record_id) if not f.cancelled() and not f.exception() else None)
        return done

    def _voided(self, record_id: str) -> None:
        with self._lock:
            left = self._open.get(record_id, 0) - 1
            if left > 0:
                self._open[record_id] = left
            else:
                self._open.pop(record_id, None)

    @property
    def unsettled(self) -> int:
        with self._lock:
            return sum(self._open.values())

    def close(self, keep: bool = False) -> None:
        """Close the log: removed when every intent is settled (and not `keep`), else left to be booked."""
        self._log.drain()  # the voids queued last are written (and counted) first
        self._log.close(discard=not keep and self.unsettled == 0)
