"""The publish attempt log, append-only in the store like the ledger: an intent line (the idempotency key)
before each call, an outcome line after it, a simulated publication with its exact payload, and each
take-down and release. Every line carries its checksum."""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from content_pipeline.ledger.checksum import sign
from content_pipeline.ledger.writer import LedgerWriter, writer_name
from content_pipeline.store import Store, layout

SUCCESS = ("created", "updated", "unchanged")  # an outcome that leaves the post live on the target
KINDS = ("intent", "outcome", "takedown", "release", "schedule")  # schedule: the watchdog's finding


def operator() -> str:
    """Who runs this command, as halts, quarantines and releases record it: `user@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in a container: the uid stands
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def line(kind: str, **fields: Any) -> bytes:
    """One signed line of the log."""
    assert kind in KINDS
    return sign(json.dumps({"kind": kind, **fields, "at": now()}, separators=(",", ":"), default=str).encode())


class AttemptLog:
    """This process's part of the attempt log for one run (`publish/attempts/<run>/<writer>.signed.jsonl`).
    `write` returns once the line is durable; a store that will not take it raises (the call is not made).
    `guard` is called right before each line is appended (the publish lease's check: LeaseLostError)."""

    def __init__(self, store: Store, run_id: str, guard: Callable[[], None] | None = None) -> None:
        self.run_id = run_id
        self.key = layout.attempts_log(run_id, writer_name())
        self._writer = LedgerWriter(store, run_id, None, key=self.key, guard=guard)

    def write(self, kind: str, **fields: Any) -> None:
        self._writer.append_line(line(kind, run_id=self.run_id, **fields))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> AttemptLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
