"""Damaged records kept on the books: each one's cost, from the views' last copy of it (else the most any record
of the ledger cost), written once beside its quarantine copy and counted in spend until its loss is accepted
or the record is salvaged, so holding a damaged line never makes the books drop below what was paid."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import polars as pl

from content_pipeline.errors import StoreError
from content_pipeline.ledger.checksum import check
from content_pipeline.ledger.jsonl import iter_pieces
from content_pipeline.ledger.quarantine import Damaged
from content_pipeline.ledger.records import valid_record
from content_pipeline.ledger.scan import stream_ledger
from content_pipeline.money import to_nano, to_usd
from content_pipeline.store import Store, layout
from content_pipeline.views.snapshot import object_size, read_manifest

_IDS: dict[str, pl.DataType] = {"id": pl.String(), "slug": pl.String(), "status": pl.String()}
# the columns the usage sums read (views/master.py `_partial`)
USAGE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "finished_at": pl.String(),
    "status": pl.String(),
    "tokens_in": pl.Int64(),
    "tokens_out": pl.Int64(),
    "cost_usd": pl.Float64(),
}


def ledger_ids(store: Store) -> set[str]:
    """The id of every complete record the ledger holds now."""
    ids: set[str] = set()
    stream_ledger(store, lambda frame: ids.update(frame["id"].to_list()), schema=_IDS, cached=False)
    return ids


def lost_records(store: Store, view_objects: Iterable[str]) -> dict[str, bytes]:
    """record id -> its line, for each line of `view_objects` that checks out (its checksum, the record
    schema) and whose record the ledger no longer holds."""
    have = ledger_ids(store)
    found: dict[str, bytes] = {}
    keys = list(dict.fromkeys(view_objects))
    for piece in iter_pieces(store, [(key, object_size(store, key)) for key in keys]):
        for line in piece.data.splitlines():
            if not line.strip() or check(line) is not None or not valid_record(line.decode(errors="replace")):
                continue
            record_id = str(json.loads(line)["id"])
            if record_id not in have:
                found.setdefault(record_id, line)
    return found


def booking_key(where: str) -> str:
    return f"{layout.BOOKED_LOSSES}{hashlib.sha256(where.encode()).hexdigest()[:32]}.json"


def _view_copies(store: Store) -> list[str]:
    """The objects of the current successes and rejects views (none when there are no views, or they are
    damaged: the booking then falls back to the most a record cost)."""
    try:
        manifest = read_manifest(store)
    except StoreError:
        return []
    files = (manifest or {}).get("files", {})
    return [files[name] for name in ("successes", "rejects") if isinstance(files.get(name), str)]


def _from_copies(store: Store, damaged: list[Damaged]) -> dict[str, dict[str, Any]]:
    """where -> the booking of each damaged record the views copied before it was damaged: the lost copy of
    its slug, else (its slug unreadable) a lost copy of its segment's run; one copy to one damaged line."""
    lost = [json.loads(line) for line in lost_records(store, _view_copies(store)).values()]
    out: dict[str, dict[str, Any]] = {}
    for by_slug in (True, False):
        for record in (d for d in damaged if d.where not in out):
            match = next((c for c in lost if _matches(c, record, by_slug)), None)
            if match is not None:
                lost.remove(match)
                out[record.where] = {
                    "run_id": str(match["run_id"]),
                    "finished_at": str(match.get("finished_at") or ""),
                    "cost_nano": to_nano(float(match.get("cost_usd") or 0.0)),
                    "source": f"the views' copy of record {match['id']}",
                }
    return out


def _matches(copy: dict[str, Any], record: Damaged, by_slug: bool) -> bool:
    return str(copy["slug"]) == record.slug if by_slug else str(copy["run_id"]) == _run_of(record)


def _run_of(record: Damaged) -> str:
    """The run whose ledger segment holds the damaged line."""
    return record.where.split(":", 1)[0].removeprefix(layout.LEDGER_PREFIX).split("/", 1)[0]


def _fallback(record: Damaged, most_nano: int) -> dict[str, Any]:
    return {
        "run_id": _run_of(record),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cost_nano": most_nano,
        "source": "no copy in the views: the most any record of the ledger cost",
    }


def _booking(store: Store, where: str) -> dict[str, Any] | None:
    """The booking kept for the damaged record at `where` (None when there is none, or it is unreadable)."""
    try:
        booking = json.loads(store.get(booking_key(where)) or b"null")
        int(booking["cost_nano"])
        str(booking["run_id"]), str(booking["finished_at"])
    except (ValueError, KeyError, TypeError):
        return None
    return dict(booking)


def book_damaged(store: Store, damaged: list[Damaged], most_nano: int, write: bool = True) -> pl.DataFrame:
    """Usage rows for the damaged records whose loss is not accepted: each one's booking, written the first
    time it is seen (with `write`, on a store that takes writes) and read back after. `most_nano`: the most
    any record of the ledger cost, booked for a record the views never copied."""
    bookings: dict[str, dict[str, Any]] = {}
    missing = []
    for record in (d for d in damaged if not d.accepted and not d.intent):
        booking = _booking(store, record.where)
        if booking is None:
            missing.append(record)  # none yet, or unreadable: booked anew
        else:
            bookings[record.where] = booking
    if missing:
        found = _from_copies(store, missing)
        for record in missing:
            entry = {
                "where": record.where,
                "slug": record.slug,
                **(found.get(record.where) or _fallback(record, most_nano)),
            }
            if write and not store.read_only:
                store.put(booking_key(record.where), json.dumps(entry).encode())
            bookings[record.where] = entry
    rows = [
        {
            "run_id": b["run_id"],
            "finished_at": b["finished_at"],
            "status": "held",
            "tokens_in": 0,
            "tokens_out": 0,
            "cost_usd": to_usd(int(b["cost_nano"])),
        }
        for b in bookings.values()
    ]
    return pl.DataFrame(rows, schema=USAGE_SCHEMA)
