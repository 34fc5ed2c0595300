"""Salvage: ledger records lost since the views copied them (a damaged line, a lost segment), found again
in those copies, proved by their own checksums, and written back to the ledger."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from content_pipeline.ledger.quarantine import Damaged, accept_loss
from content_pipeline.ledger.writer import writer_name
from content_pipeline.store import Store, layout
from content_pipeline.views.booked import lost_records


@dataclass
class Salvaged:
    """What a salvage found: the records written back (slug by record id), where, and the damaged lines
    they settle."""

    records: dict[str, str] = field(default_factory=dict)
    segments: dict[str, bytes] = field(default_factory=dict)  # segment key -> the lines written back there
    settled: list[Damaged] = field(default_factory=list)


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
