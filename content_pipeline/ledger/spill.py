"""Rows spread over local temporary files by a hash of one column, so a big ledger is worked a part at a time."""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Iterator
from types import TracebackType

import polars as pl

PART_BYTES = 128 * 2**20  # ledger bytes per partition: a partition's columns stay in the tens of megabytes
FLUSH_ROWS = 65_536  # rows gathered in memory (over all partitions) before each partition's are written
_SEED = 0x5EED  # the hash seed: the same value goes to the same partition in every Partitions of a process
_LENGTH = 8  # bytes of the length prefix of each written block


def partitions_for(ledger_bytes: int) -> int:
    """How many partitions a ledger of this size is worked in (1: in memory, nothing spilled)."""
    return max(1, math.ceil(ledger_bytes / PART_BYTES))


def compact(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with its text copied into buffers of its own: the rows a filter keeps still point into
    the buffers of every row it read (a whole partition), which would otherwise stay in memory."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(pl.concat_str(pl.col(name), pl.lit("")) for name in text)


class Partitions:
    """Frames added are split by a hash of `key` into `count` partitions; iterating gives each partition's
    rows (in the order they were added), one partition at a time. Every row with the same `key` value
    lands in the same partition. With one partition the rows stay in memory; with more, rows are gathered
    until `flush_rows` of them wait (over all partitions, so what waits does not grow with the count),
    then each partition's are written to its own file (Arrow IPC) in a temporary directory that `close`
    removes."""

    def __init__(
        self, count: int, key: str = "slug", schema: pl.Schema | None = None, flush_rows: int = FLUSH_ROWS
    ) -> None:
        self.count, self.key, self.flush_rows = count, key, flush_rows
        self.spilled_bytes = 0
        self.schema = schema  # of the frames added (the first one's when not given)
        self._pending: list[list[pl.DataFrame]] = [[] for _ in range(count)]
        self._waiting = 0  # rows gathered and not yet written
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._files: list[io.BufferedWriter] = []
        if count > 1:
            self._dir = tempfile.TemporaryDirectory(prefix="content-pipeline-spill-")
            self._files = [open(self._path(i), "wb") for i in range(count)]  # noqa: SIM115 - closed by close()

    def _path(self, i: int) -> str:
        assert self._dir is not None
        return os.path.join(self._dir.name, f"part-{i:05d}.arrows")

    def part_of(self, frame: pl.DataFrame) -> pl.Series:
        """The partition of each row."""
        return (frame[self.key].hash(_SEED) % self.count).cast(pl.UInt32)

    def add(self, frame: pl.DataFrame) -> None:
        if self.schema is None:
            self.schema = frame.schema
        if self.count == 1:
            self._pending[0].append(frame)
            return
        parts = frame.with_columns(_part=self.part_of(frame)).partition_by("_part", as_dict=True, include_key=False)
        for (i,), part in parts.items():
            self._pending[int(i)].append(part)  # type: ignore[call-overload]
        self._waiting += frame.height
        if self._waiting >= self.flush_rows:
            for i in range(self.count):
                self._flush(i)
            self._waiting = 0

    def _flush(self, i: int) -> None:
        if not self._pending[i]:
            return
        out = io.BytesIO()
        pl.concat(self._pending[i], rechunk=False).write_ipc(out)
        block = out.getvalue()
        self._files[i].write(len(block).to_bytes(_LENGTH, "little") + block)
        self.spilled_bytes += _LENGTH + len(block)
        self._pending[i] = []

    def seal(self) -> None:
        """Write what is still gathered and close the files: no more rows are added."""
        for i, file in enumerate(self._files):
            if not file.closed:
                self._flush(i)
                file.close()

    def __iter__(self) -> Iterator[pl.DataFrame]:
        """Each partition's rows (sealing them first); an empty partition gives an empty frame of the
        frames' schema. Partitions can be worked through any number of times."""
        self.seal()
        for i in range(self.count):
            frames = self._pending[0] if self.count == 1 else list(self._blocks(i))
            yield pl.concat(frames, rechunk=False) if frames else pl.DataFrame(schema=self.schema)

    def _blocks(self, i: int) -> Iterator[pl.DataFrame]:
        with open(self._path(i), "rb") as file:
            while head := file.read(_LENGTH):
                yield pl.read_ipc(io.BytesIO(file.read(int.from_bytes(head, "little"))))

    def close(self) -> None:
        for file in self._files:
            file.close()
        if self._dir is not None:
            self._dir.cleanup()
        self._pending = [[] for _ in range(self.count)]

    def __enter__(self) -> Partitions:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
