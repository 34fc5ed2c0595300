"""The rescue file: answered outcomes the store would not take, kept on local disk until the next run
imports them (ledger/recover.py) into the ledger before anything else."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from content_pipeline.store import Store

SUFFIX = ".rescue.jsonl"


def store_id(store: Store) -> str:
    """A short name for the store, so a rescue file is imported only by a run on the same store."""
    return hashlib.sha256(store.url.encode()).hexdigest()[:16]


def rescue_path(folder: str, store: Store, segment: str) -> Path:
    """The rescue file of one ledger writer: named for the store (so only its next run imports it) and
    for the segment the records were meant for."""
    name = segment.replace("/", "_").removesuffix(".jsonl")
    return Path(folder) / f"{store_id(store)}-{name}{SUFFIX}"


class RescueFile:
    """Appends whole signed lines to a local file, each fsynced before `append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
