"""Counters of a generation run, shared by every chunk (thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from content_pipeline.ledger.records import OutcomeRecord


@dataclass
class RunStats:
    """What a run's generation decided and called, for the report and the progress line."""

    successes: int = 0
    rejects: int = 0
    escalations: int = 0
    calls: int = 0
    failed_calls: int = 0
    fallback_calls: int = 0  # calls made to FALLBACK_MODEL once the primary was down
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    skipped: int = 0
    not_attempted: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, record: OutcomeRecord) -> int:
        """Count a decided item; returns the successes so far, this one included (each count seen once)."""
        with self._lock:
            if record.status == "success":
                self.successes += 1
            else:
                self.rejects += 1
                self.reject_reasons[record.reason or "unknown"] += 1
            self.escalations += record.escalated
            self.calls += len(record.calls)
            self.failed_calls += sum(c.outcome.startswith("failed") for c in record.calls)
            self.fallback_calls += sum(c.provider is not None for c in record.calls)
            self.tokens_in += record.tokens_in
            self.tokens_out += record.tokens_out
            self.tokens_cached += record.tokens_cached
            return self.successes

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    @property
    def decided(self) -> int:
        return self.successes + self.rejects

    @property
    def done(self) -> int:
        """Items this run is through with: decided, skipped (decided elsewhere) or not attempted."""
        return self.successes + self.rejects + self.skipped + self.not_attempted
