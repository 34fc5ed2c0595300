"""The checkpoint: done, rejected and queued, exactly as master and the live claims say, written column-wise."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import polars as pl

Checkpoint = dict[str, Any]
_PARTS = ("done", "rejected", "queued")
_MEMBERS_BATCH = 100_000  # rows made into JSON text at a time: the text of a batch, not of master, in flight


def decided(checkpoint: Checkpoint, again: Collection[str] = ()) -> set[str]:
    """The slugs no run generates again: done, rejected for good (not retryable), or held because their
    record is damaged (until an operator accepts the loss); those among `again` (a replay's rejects, changed
    items' successes) are left out, unless held."""
    again = set(again)
    final = {slug for slug, r in checkpoint.get("rejected", {}).items() if not r.get("retryable")}
    return ((set(checkpoint.get("done", {})) | final) - again) | set(checkpoint.get("held", {}))


def _json_string(column: str) -> pl.Expr:
    """Each value as a JSON literal (escaped as JSON requires)."""
    return pl.struct(pl.col(column).alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")


def _json_members(frame: pl.DataFrame, value: pl.Expr) -> list[bytes]:
    """`"slug":<value>` for every row in slug order, joined by commas (a JSON object's inside), as pieces
    of a batch of rows each (joined once, by the caller)."""
    frame = frame.sort("slug")
    pieces = []
    for start in range(0, frame.height, _MEMBERS_BATCH):
        batch = frame.slice(start, _MEMBERS_BATCH)
        members = batch.select(pl.concat_str(_json_string("slug"), pl.lit(":"), value).str.join(","))
        pieces.append((b"," if start else b"") + str(members.item()).encode())
    return pieces


def _decided_text(
    successes: pl.DataFrame, rejects: pl.DataFrame, held: dict[str, str]
) -> tuple[list[bytes], list[bytes]]:
    """The checkpoint's text before and after its queued object (done and rejected, from master; held, from
    quarantine), in pieces."""
    done = _json_members(successes, _json_string("id"))
    flags = pl.struct("id", "reason", pl.col("retryable").fill_null(False))
    rejected = _json_members(rejects, flags.struct.json_encode())
    kept = json.dumps(dict(sorted(held.items())), separators=(",", ":")).encode()
    return [b'{"done":{', *done, b'},"queued":'], [b',"rejected":{', *rejected, b'},"held":', kept, b"}\n"]


def checkpoint_bytes(
    successes: pl.DataFrame, rejects: pl.DataFrame, claims: dict[str, str], held: dict[str, str]
) -> bytes:
    """done / rejected / queued / held, exactly as master and quarantine say; queued (`claims`: slug -> run id
    of the live runs' claims) excludes anything already decided. Written column-wise (a million entries in a
    fraction of a second), keys in slug order."""
    slugs = pl.concat([successes.select("slug"), rejects.select("slug")])["slug"]
    taken = set(slugs.filter(slugs.is_in(list(claims))).to_list()) if claims else set()
    queued = {slug: run for slug, run in sorted(claims.items()) if slug not in taken and slug not in held}
    head, tail = _decided_text(successes, rejects, held)
    return b"".join([*head, json.dumps(queued, separators=(",", ":")).encode(), *tail])


def _starts_with(raw: memoryview, pieces: list[bytes], at: int) -> int | None:
    """Where `pieces`, laid end to end from `at`, end in `raw`; None when the bytes there differ."""
    for piece in pieces:
        if raw[at : at + len(piece)] != piece:
            return None
        at += len(piece)
    return at


def checkpoint_queued(
    raw: bytes, successes: pl.DataFrame, rejects: pl.DataFrame, held: dict[str, str]
) -> dict[str, Any] | None:
    """The checkpoint's queued entries when `raw` holds exactly master's done and rejected entries and the
    held ones as `checkpoint_bytes` writes them (compared as bytes, without a dict of a million entries);
    else None."""
    head, tail = _decided_text(successes, rejects, held)
    view = memoryview(raw)
    start = _starts_with(view, head, 0)
    size = sum(len(p) for p in tail)
    if start is None or len(raw) - size < start or _starts_with(view, tail, len(raw) - size) != len(raw):
        return None
    try:
        queued = json.loads(raw[start : len(raw) - size])
    except ValueError:
        return None
    return queued if isinstance(queued, dict) else None


def build_checkpoint(
    successes: pl.DataFrame, rejects: pl.DataFrame, claims: dict[str, str], held: dict[str, str]
) -> Checkpoint:
    """The checkpoint as a dict (what `checkpoint_bytes` writes)."""
    return json.loads(checkpoint_bytes(successes, rejects, claims, held))


def parse_checkpoint(raw: bytes | None) -> Checkpoint:
    """The checkpoint's entries; ValueError when the bytes are not a checkpoint."""
    checkpoint = json.loads(raw) if raw else {"done": {}, "rejected": {}, "queued": {}}
    if not isinstance(checkpoint, dict) or not all(isinstance(checkpoint.get(k), dict) for k in _PARTS):
        raise ValueError(f"not a checkpoint: expected an object with {', '.join(_PARTS)}")
    return checkpoint
