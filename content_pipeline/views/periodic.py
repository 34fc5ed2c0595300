"""Consolidation in the background while a run generates, kept to a share of the run's time."""

from __future__ import annotations

import threading
import time

from content_pipeline.store import Store
from content_pipeline.views.consolidate import consolidate


class PeriodicConsolidator:
    """Runs a consolidation in the background every `every` successes; skips while one is running, and
    while the last one's share of the time since it started would exceed `share` (a consolidation of a
    million-record master takes seconds: it must not crowd the generation it runs beside)."""

    def __init__(self, store: Store, every: int, share: float = 0.1) -> None:
        self.store, self.every, self.share = store, every, share
        self.runs = self.skipped = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next_at = 0.0  # monotonic time before which no new consolidation starts

    def __call__(self, successes: int) -> None:
        if self.every <= 0 or self.store.read_only or successes % self.every:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if time.monotonic() < self._next_at:
                self.skipped += 1
                return
            self._thread = threading.Thread(target=self._run, name="periodic-consolidate", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        try:
            if consolidate(self.store, wait_s=0) is not None:
                self.runs += 1
        finally:
            took = time.monotonic() - start
            with self._lock:
                self._next_at = start + took / self.share

    def join(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
