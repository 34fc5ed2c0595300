"""Bounded-memory column scans of JSONL objects in the store: read in ranges, decode only the fields asked for."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import polars as pl

from content_pipeline.ledger.checksum import check, check_lines
from content_pipeline.store import Store

_CHECKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-checksums")
CHUNK_BYTES = 8 * 2**20  # bytes read (and decoded) at a time: small enough for malloc to reuse, not page-fault


@dataclass
class Piece:
    """Complete lines of one object: `data` ends with a newline and holds `lines` lines, the first of
    which is line `first` (0-based)."""

    seg: int
    first: int
    data: bytes
    lines: int


@dataclass
class ObjectEnd:
    """How an object ended: its complete lines, where they end, and the bytes after the last newline."""

    lines: int = 0
    complete: int = 0
    tail: bytes = b""
    lines_at: dict[int, int] = field(default_factory=dict)  # byte limit -> complete lines before it


def iter_pieces(
    store: Store,
    objects: list[tuple[str, int]],
    ends: dict[int, ObjectEnd] | None = None,
    limits: dict[int, int] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Piece]:
    """The complete lines of each (key, size) object, read in ranges of about `chunk_bytes` up to the size
    listed (bytes appended since are left for the next scan). A final line without its newline is not
    yielded; it is reported in `ends[seg].tail`. `limits` (seg -> byte limit) asks for the count of
    complete lines before that limit, in `ends[seg].lines_at`."""
    for seg, (key, size) in enumerate(objects):
        end = ObjectEnd()
        pos, line = 0, 0  # pos: where the complete lines read so far end
        limit = (limits or {}).get(seg)
        while pos < size:
            data = store.get_range(key, pos, min(size, pos + chunk_bytes))
            if not data:  # shorter than listed (cut by a repair): what was read is all there is
                break
            cut = data.rfind(b"\n") + 1
            while not cut and pos + len(data) < size:  # one line longer than a chunk: read on until it ends
                more = store.get_range(key, pos + len(data), min(size, pos + len(data) + chunk_bytes))
                if not more:  # shorter than listed: the bytes read are its tail
                    break
                data += more
                cut = data.rfind(b"\n") + 1
            if not cut:
                end.tail = data
                break
            complete = data if cut == len(data) else data[:cut]
            count = complete.count(b"\n")
            if limit is not None and pos < limit <= pos + cut:
                end.lines_at[limit] = line + complete.count(b"\n", 0, limit - pos)
            yield Piece(seg, line, complete, count)
            pos += cut
            line += count
        end.lines, end.complete = line, pos
        if limit is not None and limit not in end.lines_at:
            end.lines_at[limit] = line if limit >= pos else 0
        if ends is not None:
            ends[seg] = end


def batches(pieces: Iterable[Piece], chunk_bytes: int = CHUNK_BYTES) -> Iterator[list[Piece]]:
    """Pieces grouped to between half and about one `chunk_bytes` each (many small objects decode in one go;
    a piece of half a chunk or more decodes on its own, without being copied into a batch)."""
    batch: list[Piece] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece.data)
        if size >= chunk_bytes // 2:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _positions(pieces: list[tuple[int, int, int]]) -> pl.DataFrame:
    """seg and line of every row, from (seg, first line, line count) runs."""
    runs = pl.DataFrame(
        {"seg": [p[0] for p in pieces], "first": [p[1] for p in pieces], "n": [p[2] for p in pieces]},
        schema={"seg": pl.UInt32, "first": pl.UInt32, "n": pl.UInt32},
    ).filter(pl.col("n") > 0)
    return runs.select(
        pl.col("seg").repeat_by("n").explode(),
        pl.int_ranges("first", pl.col("first") + pl.col("n"), dtype=pl.UInt32).explode().alias("line"),
    )


def _decode(data: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.read_ndjson(io.BytesIO(data), schema=schema)


@dataclass(frozen=True)
class BadLine:
    """A line left out of a scan: which object (`seg`) and line (0-based), what is wrong, and its bytes."""

    seg: int
    line: int
    what: str
    raw: bytes

    def where(self, name: str) -> str:
        return f"{name}: line {self.line + 1}"

    def message(self, name: str) -> str:
        return f"{self.where(name)} {self.what}"


def iter_frames(
    pieces: Iterable[Piece],
    schema: dict[str, pl.DataType],
    names: list[str],
    valid: Callable[[str], bool],
    bad: list[BadLine],
    chunk_bytes: int = CHUNK_BYTES,
    signed: frozenset[int] = frozenset(),
) -> Iterator[pl.DataFrame]:
    """The `schema` fields of every line, a batch of pieces at a time, with `seg` and `line` saying where
    each row came from. Blank lines are skipped; lines that are not UTF-8, fail `valid`, or (in the objects
    `signed`) fail their checksum are left out and described in `bad`."""
    for batch in batches(pieces, chunk_bytes):
        data = batch[0].data if len(batch) == 1 else b"".join(p.data for p in batch)
        runs = [(p.seg, p.first, p.lines) for p in batch]
        to_check = [p.data for p in batch if p.seg in signed]
        # the checksums are checked on a thread of their own while polars decodes (it lets go of the GIL)
        damaged = _CHECKER.submit(lambda parts=to_check: any(map(check_lines, parts))) if to_check else None
        try:
            frame = _decode(data, schema)
            if damaged is not None and damaged.result():
                raise ValueError
            if frame.height != sum(r[2] for r in runs):  # blank lines were skipped: find them line by line
                raise ValueError
            yield frame.hstack(_positions(runs))
        except (pl.exceptions.PolarsError, ValueError):
            yield _line_by_line(batch, schema, names, valid, bad, signed)


def _by_object(frames: Iterable[pl.DataFrame]) -> dict[int, pl.DataFrame]:
    """`iter_frames`' rows gathered by object (seg): each object's rows with their `line`."""
    parts: dict[int, list[pl.DataFrame]] = {}
    for frame in frames:
        segs = frame["seg"].unique()
        if len(segs) == 1:
            parts.setdefault(int(segs[0]), []).append(frame.drop("seg"))
        else:
            for (seg,), part in frame.partition_by("seg", as_dict=True, include_key=False).items():
                parts.setdefault(int(seg), []).append(part)  # type: ignore[call-overload]
    return {seg: pl.concat(frames, rechunk=False) for seg, frames in parts.items()}


def _line_by_line(
    batch: list[Piece],
    schema: dict[str, pl.DataType],
    names: list[str],
    valid: Callable[[str], bool],
    bad: list[BadLine],
    signed: frozenset[int],
) -> pl.DataFrame:
    """The slow path for a batch holding a blank or damaged line: check each line on its own."""
    kept: list[bytes] = []
    runs: list[tuple[int, int, int]] = []
    for piece in batch:
        for number, raw in enumerate(piece.data.split(b"\n")[:-1], start=piece.first):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(BadLine(piece.seg, number, "is not UTF-8", raw))
                continue
            try:
                if not valid(text):
                    raise ValueError
                _decode(raw, schema)
            except (pl.exceptions.PolarsError, ValueError):
                bad.append(BadLine(piece.seg, number, f"does not parse: {text[:80]!r}", raw))
                continue
            if piece.seg in signed and (wrong := check(raw)) is not None:
                bad.append(BadLine(piece.seg, number, wrong, raw))
                continue
            kept.append(raw)
            runs.append((piece.seg, number, 1))
    frame = _decode(b"\n".join(kept) + b"\n", schema) if kept else pl.DataFrame(schema=schema)
    return frame.hstack(_positions(runs))


def _observed(pieces: Iterator[Piece], observe: Callable[[Piece], None]) -> Iterator[Piece]:
    for piece in pieces:
        observe(piece)
        yield piece


@dataclass
class Decoded:
    """One object's decoded columns (with its `line` numbers), how it ended, and its damaged lines."""

    frame: pl.DataFrame
    end: ObjectEnd
    bad: list[BadLine]


class ColumnCache:
    """Decoded columns by (store, key, version, size, columns), the least recently used dropped past
    `max_bytes`: an object this process decoded is not read again while its version stands (ledger
    segments only grow, view objects never change)."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple[str, ...], Decoded] = OrderedDict()
        self._bytes: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def get(self, ident: tuple[str, ...]) -> Decoded | None:
        with self._lock:
            found = self._entries.get(ident)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(ident)
            self.hits += 1
            return found

    def put(self, ident: tuple[str, ...], decoded: Decoded) -> None:
        size = decoded.frame.estimated_size()
        if size > self.max_bytes:
            return
        with self._lock:
            self._entries[ident] = decoded
            self._bytes[ident] = size
            while sum(self._bytes.values()) > self.max_bytes:
                oldest, _ = self._entries.popitem(last=False)
                del self._bytes[oldest]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes.clear()


CACHE = ColumnCache()


def decode_objects(
    store: Store,
    objects: list[tuple[str, int, str | None]],
    schema: dict[str, pl.DataType],
    valid: Callable[[str], bool],
    *,
    limits: dict[int, int] | None = None,
    cache: ColumnCache | None = CACHE,
    chunk_bytes: int = CHUNK_BYTES,
    observe: Callable[[Piece], None] | None = None,
    signed: frozenset[int] = frozenset(),
) -> list[Decoded]:
    """The `schema` columns of each (key, size, version) object, read in bounded chunks up to its size;
    an object whose version this process already decoded comes from `cache` (version None: never cached).
    `limits` (index -> byte limit) asks for `end.lines_at[limit]`, the complete lines before the limit.
    `observe` sees every piece read (not those of cached objects): to hash the bytes in the same pass.
    The lines of the objects (indexes) in `signed` must match their checksums."""
    limits = limits or {}
    found: dict[int, Decoded] = {}
    idents: dict[int, tuple[str, ...]] = {}
    for i, (key, size, version) in enumerate(objects):
        if cache is None or version is None:
            continue
        idents[i] = (store.url, key, version, str(size), ",".join(schema))
        hit = cache.get(idents[i])
        limit = limits.get(i)
        if hit is not None and limit is not None and limit not in hit.end.lines_at:
            if limit < hit.end.complete:
                continue  # a line count this entry does not know: read the object again
            hit = Decoded(hit.frame, replace(hit.end, lines_at={**hit.end.lines_at, limit: hit.end.lines}), hit.bad)
        if hit is not None:
            found[i] = hit
    todo = [i for i in range(len(objects)) if i not in found]
    if todo:
        ends: dict[int, ObjectEnd] = {}
        bad: list[BadLine] = []
        sub = [(objects[i][0], objects[i][1]) for i in todo]
        sublimits = {j: limits[i] for j, i in enumerate(todo) if i in limits}
        pieces = iter_pieces(store, sub, ends, sublimits, chunk_bytes)
        if observe is not None:
            pieces = _observed(pieces, observe)
        names = [key for key, _ in sub]
        mine = frozenset(j for j, i in enumerate(todo) if i in signed)
        frames = _by_object(iter_frames(pieces, schema, names, valid, bad, chunk_bytes, mine))
        empty = pl.DataFrame(schema={**schema, "line": pl.UInt32})
        for j, i in enumerate(todo):
            own = [replace(b, seg=i) for b in bad if b.seg == j]  # numbered as in `objects` (of this call)
            decoded = Decoded(frames.get(j, empty), ends.get(j, ObjectEnd()), own)
            found[i] = decoded
            whole = decoded.end.complete + len(decoded.end.tail) == objects[i][1]
            if i in idents and cache is not None and whole:  # a short read is never served again
                cache.put(idents[i], decoded)
    return [found[i] for i in range(len(objects))]
