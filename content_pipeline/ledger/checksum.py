"""Each ledger line's checksum of its own bytes: a sha256 of the record as written, carried as its last field."""

from __future__ import annotations

import hashlib

_FIELD = b',"checksum":"'
_DIGITS = 16  # hex digits of the sha256 kept: 64 bits, enough to catch any edit or flip by chance
_SUFFIX = len(_FIELD) + _DIGITS + 2  # the field, its value and the closing `"}`


def _digest(body: bytes) -> bytes:
    return hashlib.sha256(body).hexdigest()[:_DIGITS].encode()


def sign(record_json: bytes) -> bytes:
    """A record's JSON object (`{...}`, without the checksum) as a ledger line: the checksum added as its
    last field, then a newline."""
    return record_json[:-1] + _FIELD + _digest(record_json) + b'"}\n'


def check(line: bytes) -> str | None:
    """None when `line` (one ledger line, without its newline) carries its checksum and matches it; else
    what is wrong ("no checksum" for a line written before records carried one)."""
    return _check(line, memoryview(line), 0, len(line))


def _check(data: bytes, view: memoryview, start: int, end: int) -> str | None:
    """`check` of the line data[start:end], hashed through `view` (no copy of the line)."""
    body = end - _SUFFIX
    if body <= start or data[end - 2 : end] != b'"}' or data[body : body + len(_FIELD)] != _FIELD:
        return "no checksum"
    digest = hashlib.sha256(view[start:body])
    digest.update(b"}")
    if digest.hexdigest()[:_DIGITS].encode() != data[end - _DIGITS - 2 : end - 2]:
        return "fails its checksum (changed since it was written)"
    return None


def check_lines(data: bytes) -> str | None:
    """None when every non-blank line of `data` (whole lines) carries its checksum and matches it; else what
    is wrong with the first that does not (as `check` says it). The fast path of a scan, a line at a time
    without copying it."""
    view, start, size = memoryview(data), 0, len(data)
    while start < size:
        end = data.find(b"\n", start)
        end = size if end < 0 else end
        if end > start and (problem := _check(data, view, start, end)) is not None and data[start:end].strip():
            return problem  # (a blank line is no record: nothing to check)
        start = end + 1
    return None
