"""A background renewal: something a live process holds (a lease, a run's claims) renewed every interval."""

from __future__ import annotations

import threading
from collections.abc import Callable

from content_pipeline.errors import StoreError


class Renewal:
    """Calls `renew` every `every_s` seconds on a thread of its own until `stop`, or until `renew` returns
    False (what it renews was lost). A store error is tried again at the next turn: the holder keeps its
    hold until the expiry it last wrote."""

    def __init__(self, name: str, every_s: float, renew: Callable[[], bool]) -> None:
        self.every_s, self._renew = every_s, renew
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Renewal:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                if not self._renew():
                    return
            except StoreError:
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
