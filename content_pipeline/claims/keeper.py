"""The claim keeper: a live run's claims renewed in the background, so they never expire under it."""

from __future__ import annotations

import time

from content_pipeline.claims.queue import Queue, update_queue
from content_pipeline.store import Store
from content_pipeline.store.renewal import Renewal


class ClaimKeeper:
    """Renews a run's claims every third of their lifetime while it generates."""

    def __init__(self, store: Store, run_id: str, ttl_s: float) -> None:
        self.store, self.run_id, self.ttl_s = store, run_id, ttl_s
        self._renewal = Renewal(f"claims-{run_id}", ttl_s / 3, self._renew)
        if not store.read_only:
            self._renewal.start()

    def _extend(self, queue: Queue) -> Queue:
        entry = queue.get("runs", {}).get(self.run_id)
        if entry:
            entry["expires_ts"] = time.time() + self.ttl_s
        return queue

    def _renew(self) -> bool:
        update_queue(self.store, self._extend)
        return True

    def stop(self) -> None:
        self._renewal.stop()
