"""The store interface every backend implements: atomic replace, create-if-absent, durable append."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import NoReturn

from content_pipeline.errors import ReadOnlyViolation, StoreError

DIGEST_CHUNK = 8 << 20  # bytes read at a time to take an object's digest
_KEY = re.compile(r"^[A-Za-z0-9_=-][A-Za-z0-9._=-]*(/[A-Za-z0-9_=-][A-Za-z0-9._=-]*)*$")


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key (no `..`, no absolute path, no odd bytes)."""
    if len(key) > 512 or not _KEY.match(key):
        raise StoreError(f"invalid store key {key!r}: only [A-Za-z0-9._=-] segments are allowed")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key, size in bytes, an opaque version (ETag, or inode, mtime and size) that
    changes when its bytes do, and when it was last written (seconds since the epoch, the store's clock)."""

    key: str
    size: int
    version: str
    modified: float = 0.0


@dataclass
class RequestCounts:
    """The requests a remote store made, by verb and area (ledger, views, claims, leases, run files);
    `attempts` counts HTTP attempts, so retries are the difference."""

    by_verb_area: Counter[tuple[str, str]] = field(default_factory=Counter)
    attempts: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_verb_area.values())

    def puts(self, *, views: bool) -> dict[str, int]:
        """PUTs by area, of the views (consolidation) or of everything else."""
        return {
            area: n
            for (verb, area), n in sorted(self.by_verb_area.items())
            if verb == "PUT" and (area == "views") == views
        }

    def line(self, items: int) -> str:
        """One line for the run report."""
        verbs: Counter[str] = Counter()
        for (verb, _), n in self.by_verb_area.items():
            verbs[verb] += n
        outside = self.puts(views=False)
        per_item = f"{sum(outside.values()) / items:.2f}" if items else "n/a"
        return (
            f"S3 requests: {self.total} ({', '.join(f'{v} {n}' for v, n in sorted(verbs.items()))}; "
            f"{max(self.attempts - self.total, 0)} retried); PUTs per generated item outside consolidation: "
            f"{per_item} ({', '.join(f'{a} {n}' for a, n in outside.items()) or 'none'}); "
            f"consolidation PUTs: {sum(self.puts(views=True).values())}"
        )


class ObjectWriter(ABC):
    """Writes one object in pieces, bounded in memory; nothing is visible under the key until `commit`."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def commit(self) -> None:
        """Make the whole object visible at once (atomically replacing any previous one)."""

    @abstractmethod
    def abort(self) -> None:
        """Discard what was written; the key is left as it was."""


class BufferedWriter(ObjectWriter):
    """The fallback writer: collects the pieces and writes them in one `put` on commit."""

    def __init__(self, store: Store, key: str) -> None:
        self.store, self.key = store, key
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._parts.append(data)

    def commit(self) -> None:
        self.store.put(self.key, b"".join(self._parts))
        self._parts = []

    def abort(self) -> None:
        self._parts = []


class Appender(ABC):
    """Durable appends of whole records to one object; `append` returns once the bytes are safe."""

    @abstractmethod
    def append(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def discard(self) -> None:
        """Close, and remove everything this appender appended (a log that is no longer needed)."""


class Store(ABC):
    """One interface over a local folder or an S3 prefix; nothing above it knows which."""

    url: str
    read_only: bool = False

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when absent."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Atomically replace (or create) the object."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if absent; False when it already exists."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object if it exists."""

    def delete_many(self, keys: list[str]) -> None:
        """Delete every one of `keys` that exists."""
        for key in keys:
            self.delete(key)

    @abstractmethod
    def appender(self, key: str) -> Appender:
        """An appender that adds whole records durably to a new or existing object."""

    @abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""

    def read_appended(self, key: str) -> bytes:
        """Everything appended to `key` so far, in order (b"" when nothing was)."""
        return self.get(key) or b""

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object (fewer at its end; b"" when absent): reads bounded in memory."""
        return (self.get(key) or b"")[start:end]

    def writer(self, key: str) -> ObjectWriter:
        """A writer that builds the object in pieces and replaces it atomically on commit."""
        return BufferedWriter(self, check_key(key))

    def request_counts(self) -> RequestCounts | None:
        """The requests made so far, for a remote store (None for a local folder)."""
        return None

    def digest(self, info: ObjectInfo) -> str:
        """The MD5 (hex) of the object's first `info.size` bytes: what it holds, the same in any faithful copy
        of the store (a folder copied with `cp -a`, a bucket synced to another prefix), unlike its version.
        Read once per version in this process."""
        memo: dict[tuple[str, str, int], str] = self.__dict__.setdefault("_digests", {})
        found = memo.get((info.key, info.version, info.size))
        if found is None:
            found = memo[(info.key, info.version, info.size)] = self.read_digest(info)
        return found

    def read_digest(self, info: ObjectInfo, keep: bool = True) -> str:
        """The MD5 of the object's first `info.size` bytes, read in bounded ranges (`keep`: a backend may keep
        it for other processes)."""
        md5 = hashlib.md5(usedforsecurity=False)
        at = 0
        while at < info.size and (data := self.get_range(info.key, at, min(info.size, at + DIGEST_CHUNK))):
            md5.update(data)
            at += len(data)
        return md5.hexdigest()

    @abstractmethod
    def truncate(self, key: str, size: int) -> None:
        """Cut the object down to `size` bytes (used only to repair a torn ledger tail)."""


class ReadOnlyStore(Store):
    """Wraps a store for EVIDENCE_ONLY runs: every read passes, every write raises."""

    read_only = True

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def list(self, prefix: str) -> list[ObjectInfo]:
        return self.inner.list(prefix)

    def read_appended(self, key: str) -> bytes:
        return self.inner.read_appended(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        return self.inner.get_range(key, start, end)

    def writer(self, key: str) -> ObjectWriter:
        self._refuse(key)

    def request_counts(self) -> RequestCounts | None:
        return self.inner.request_counts()

    def read_digest(self, info: ObjectInfo, keep: bool = True) -> str:
        return self.inner.read_digest(info, keep=False)  # (nothing written, not even a cached digest)

    def _refuse(self, key: str) -> NoReturn:
        raise ReadOnlyViolation(f"EVIDENCE_ONLY run tried to write {key!r}; nothing was written")

    def put(self, key: str, data: bytes) -> None:
        self._refuse(key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._refuse(key)

    def delete(self, key: str) -> None:
        self._refuse(key)

    def delete_many(self, keys: list[str]) -> None:
        self._refuse(keys[0] if keys else "")

    def appender(self, key: str) -> Appender:
        self._refuse(key)

    def truncate(self, key: str, size: int) -> None:
        self._refuse(key)
