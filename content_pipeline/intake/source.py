"""A catalogue's rows as a stream: JSONL read line by line, CSV and Parquet in batches, from a path or a URL."""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import polars as pl

from content_pipeline.errors import BadInputError

RawRow = tuple[int, dict[str, Any] | str, bool]  # row number, the row or why it is unreadable, coerce (text)
_PIECE = 1 << 20  # bytes read at a time
_FRAME_ROWS = 10_000  # CSV and Parquet rows parsed at a time
_JSONL = (".jsonl", ".ndjson", ".json")


def suffix(source: str) -> str:
    return Path(urlparse(source).path).suffix.lower()


@contextmanager
def opened(source: str, s3_options: dict[str, str | None] | None) -> Iterator[Callable[[int], bytes]]:
    """`read(n)` over the source's bytes (a path, file://, http(s):// or s3:// URL), closed afterwards; one
    clear line naming the catalogue when it cannot be opened."""
    parsed = urlparse(source)
    if parsed.scheme == "s3":
        from content_pipeline.store.s3 import open_s3_url

        try:
            body = open_s3_url(source, s3_options)
        except BadInputError as exc:
            raise BadInputError(f"catalogue {exc}") from None
    elif parsed.scheme in ("http", "https"):
        try:
            body = urllib.request.urlopen(source, timeout=30)
        except OSError as exc:
            raise BadInputError(f"catalogue {source}: cannot fetch ({exc})") from None
    else:
        path = Path(parsed.path if parsed.scheme == "file" else source)
        try:
            body = path.open("rb")
        except FileNotFoundError:
            raise BadInputError(f"catalogue {source}: file not found") from None
        except OSError as exc:
            raise BadInputError(f"catalogue {source}: cannot read ({exc.strerror})") from None
    try:
        yield _reading(source, body.read)
    finally:
        body.close()


def _reading(source: str, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    def guarded(size: int) -> bytes:
        try:
            return read(size)
        except Exception as exc:  # a dropped connection, a disk error: one line, not a traceback
            raise BadInputError(f"catalogue {source}: cannot read ({type(exc).__name__}: {exc})") from None

    return guarded


def _lines(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The lines of a byte stream, without their newline, read a piece at a time."""
    rest = b""
    while piece := read(_PIECE):
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _jsonl_row(number: int, raw: bytes) -> RawRow:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return number, f"undecodable text: invalid UTF-8 at byte {exc.start}", False
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return number, f"malformed JSON: {exc.msg} at column {exc.colno}", False
    return number, obj if isinstance(obj, dict) else "malformed row: not a JSON object", False


def raw_rows(source: str, s3_options: dict[str, str | None] | None = None, what: str = "catalogue") -> Iterator[RawRow]:
    """Every row of the catalogue (or the table `what` names) in order, read as the caller asks for it (a
    caller that stops early reads no further). JSONL streams line by line from any source; CSV and Parquet
    from a local file in batches of rows (from a URL they are fetched first: their format needs the whole
    object)."""
    kind = suffix(source)
    if kind not in (*_JSONL, ".csv", ".parquet"):
        raise BadInputError(f"{what} {source}: unknown format {kind or '(none)'!r}; use .jsonl, .csv or .parquet")
    with opened(source, s3_options) as read:
        if kind in _JSONL:
            for number, raw in enumerate(_lines(read), start=1):
                if raw.strip():
                    yield _jsonl_row(number, raw)
            return
        parsed = urlparse(source)
        local = parsed.scheme in ("", "file")
        where: Any = Path(parsed.path if parsed.scheme == "file" else source) if local else io.BytesIO(read(-1))
        yield from _frame_rows(source, where, kind, what)


def _frame_rows(source: str, where: Any, kind: str, what: str) -> Iterator[RawRow]:
    if kind == ".csv":
        frame, first, coerce = pl.scan_csv(where, infer_schema=False, encoding="utf8-lossy"), 2, True
    else:
        frame, first, coerce = pl.scan_parquet(where), 1, False
    number = first
    try:
        for batch in frame.collect_batches(chunk_size=_FRAME_ROWS):
            for row in batch.iter_rows(named=True):
                yield number, row, coerce
                number += 1
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BadInputError(f"{what} {source}: cannot parse: {str(exc).splitlines()[0]}") from None
