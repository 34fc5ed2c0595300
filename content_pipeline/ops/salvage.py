"""Salvage: ledger records lost since the views copied them (a damaged line, a lost segment), found again
in those copies, proved by their own checksums, and written back to the ledger."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from content_pipeline.ledger.checksum import check
from content_pipeline.ledger.jsonl import iter_pieces
from content_pipeline.ledger.quarantine import Damaged, accept_loss
from content_pipeline.ledger.records import valid_record
from content_pipeline.ledger.scan import stream_ledger
from content_pipeline.ledger.writer import writer_name
from content_pipeline.store import Store, layout
from content_pipeline.views.snapshot import object_size

_IDS: dict[str, pl.DataType] = {"id": pl.String(), "slug": pl.String(), "status": pl.String()}


@dataclass
class Salvaged:
    """What a salvage found: the records written back (slug by record id), where, and the damaged lines
    they settle."""

    records: dict[str, str] = field(default_factory=dict)
    segments: dict[str, bytes] = field(default_factory=dict)  # segment key -> the lines written back there
    settled: list[Damaged] = field(default_factory=list)


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


def find_lost(store: Store, view_objects: Iterable[str], damaged: list[Damaged]) -> Salvaged:
    """The records lost from the ledger that the view objects copied, each run's for a segment of its own,
    and the damaged lines whose slugs they carry (changing nothing: `write_back` writes them)."""
    lines = lost_records(store, view_objects)
    result = Salvaged()
    by_run: dict[str, list[bytes]] = defaultdict(list)
    for record_id, line in lines.items():
        record = json.loads(line)
        result.records[record_id] = str(record["slug"])
        by_run[str(record["run_id"])].append(line + b"\n")
    writer = writer_name()
    for run_id, run_lines in sorted(by_run.items()):
        result.segments[layout.ledger_segment(run_id, writer)] = b"".join(run_lines)
    slugs = set(result.records.values())
    result.settled = [d for d in damaged if not d.accepted and d.slug in slugs]
    return result


def write_back(store: Store, found: Salvaged) -> None:
    """Write what `find_lost` found into the ledger, then settle the damaged lines it recovers (their loss
    recorded as accepted, with where the record came back from)."""
    for key, data in found.segments.items():
        store.put(key, data)
    for record in found.settled:
        accept_loss(store, [record], record.where, note="recovered from the views' copy by restore")
