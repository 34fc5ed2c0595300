"""A cell: a small object changed only by compare-and-swap, each version an object of its own created with
put-if-absent, the highest version current (the way Delta Lake's log works); nothing rests on IfMatch."""

from __future__ import annotations

from itertools import pairwise

from content_pipeline.errors import StoreIOError
from content_pipeline.store.base import Store, check_key

DIGITS = 12  # version numbers, zero-padded so keys sort as numbers
KEEP = 8  # versions kept below the newest: a reader that listed just before a swap still finds its version
RETAIN_S = 300.0  # a version is collected only this long (store clock) after it stopped being current
RELEASED = b""  # the body of a version that empties the cell (a released lease): it reads as absent


class Cell:
    """The versions of one cell live under `base/` as `000000000001.json`, `000000000002.json`, ...;
    `swap` creates the version after the one read, so of two writers that read the same version exactly
    one wins, on any store whose create-if-absent is atomic. `legacy` is the single object the cell was
    before it had versions: read while no version exists, removed by the first swap.

    Old versions are collected, but only `retain_s` after they stopped being current (Delta Lake's log
    retention): a writer is assumed never to stall that long between its read and its swap. Within that
    window a stale writer cannot create a version again, and a slow writer's check that the version it
    read is still stored cannot be fooled by a collection made after its own version was built upon."""

    def __init__(self, store: Store, base: str, legacy: str | None = None, retain_s: float = RETAIN_S) -> None:
        self.store, self.prefix, self.legacy, self.retain_s = store, f"{check_key(base)}/", legacy, retain_s

    def key(self, version: int) -> str:
        return f"{self.prefix}{version:0{DIGITS}d}.json"

    def where(self, version: int) -> str:
        """The object that holds `version` (the legacy object for 0), to name it in a message."""
        return self.key(version) if version or not self.legacy else self.legacy

    def versions(self) -> list[int]:
        """The version numbers stored, oldest first (names that are not versions are left alone)."""
        return sorted(self._stored())

    def _stored(self) -> dict[int, float]:
        """Each stored version's number and when it was written (the store's clock)."""
        stored = {}
        for info in self.store.list(self.prefix):
            name = info.key[len(self.prefix) :]
            if len(name) == DIGITS + 5 and name.endswith(".json") and name[:DIGITS].isdigit():
                stored[int(name[:DIGITS])] = info.modified
        return stored

    def read(self) -> tuple[bytes | None, int]:
        """The current body (None when never written or released) and its version (0 before the first)."""
        for _ in range(5):  # the version listed may be collected before it is read: list again
            numbers = self.versions()
            if not numbers:
                return (self.store.get(self.legacy) if self.legacy else None), 0
            data = self.store.get(self.key(numbers[-1]))
            if data is not None:
                return (data if data != RELEASED else None), numbers[-1]
        raise StoreIOError(f"{self.prefix}: the current version kept vanishing while it was read")

    def swap(self, data: bytes, version: int) -> bool:
        """Make `data` the version after `version` (the one read); False when another writer made it first.
        The body must not be RELEASED unless the cell is being emptied (`release`)."""
        new = version + 1
        if not self.store.put_if_absent(self.key(new), data):
            return False
        if not self._genuine(version):
            self.store.delete(self.key(new))  # never current: a newer version exists
            return False
        if version == 0 and self.legacy and self.store.get(self.legacy) is not None:
            self.store.delete(self.legacy)
        if new % KEEP == 0:
            self._collect(new)
        return True

    def release(self, version: int) -> bool:
        """Empty the cell, only if `version` is still current (a lease given up); the versions below the
        empty one are collected once their retention has passed, so a free cell ends as one small object."""
        if not self.swap(RELEASED, version):
            return False
        self._collect(version + 1, keep=1)
        return True

    def _genuine(self, version: int) -> bool:
        """Whether the version just created after `version` was new, not one collected long ago and made
        again by a writer that read an old version: versions are collected oldest first, so while
        `version` is still stored, the one after it was never collected. Others may already have built on
        the new version: that is why `version`'s collection waits out the retention. The first version
        (after 0) is new: a cell with versions never lists as empty within the retention of its newest."""
        return version == 0 or self.store.get(self.key(version)) is not None

    def _collect(self, newest: int, keep: int = KEEP) -> None:
        """Delete, oldest first, the versions more than `keep` below `newest` whose successor was written
        more than the retention before the newest version was (both times on the store's clock)."""
        stored = self._stored()
        numbers = sorted(stored)
        now = max(stored.values(), default=0.0)
        for number, after in pairwise(numbers):
            if number > newest - keep or stored[after] > now - self.retain_s:
                break
            self.store.delete(self.key(number))
