"""What was in flight at a crash: the intents no outcome settled, booked at their worst case."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from content_pipeline.ledger.checksum import check
from content_pipeline.ledger.jsonl import BadLine
from content_pipeline.ledger.writer import writer_process
from content_pipeline.money import to_usd
from content_pipeline.store import ObjectInfo, Store, layout
from content_pipeline.store.host import Holder
from content_pipeline.store.lease import live_lease


@dataclass
class WriterIntents:
    """One writer's intents for one run: (record id, call) -> worst case in nano-dollars, voids taken out."""

    run_id: str
    writer: str
    calls: dict[tuple[str, int], int] = field(default_factory=dict)
    voided: set[tuple[str, int]] = field(default_factory=set)

    def add(self, line: dict[str, Any]) -> None:
        if "void" in line:
            self.voided.add((str(line["void"]), int(line["call"])))
        else:
            self.calls[(str(line["intent"]), int(line["call"]))] = int(line["worst_nano"])


@dataclass
class IntentScan:
    """Every intents log in the store: each writer's intents, the objects read, and the lines that are
    damaged (named; a damaged intent cannot be booked, so the audit reports it)."""

    writers: list[WriterIntents] = field(default_factory=list)
    listing: list[tuple[str, int, str]] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)  # `seg` indexes `listing`

    @property
    def damaged(self) -> list[str]:
        return [b.message(self.listing[b.seg][0]) for b in self.bad]

    @property
    def record_ids(self) -> set[str]:
        return {rid for w in self.writers for (rid, call) in w.calls if (rid, call) not in w.voided}


def intent_objects(store: Store) -> list[ObjectInfo]:
    return [info for info in store.list(layout.INTENTS_PREFIX) if layout.intents_writer(info.key) is not None]


@dataclass
class _Parsed:
    """One intents object's whole lines parsed so far: their bytes and count, a sha256 of those bytes, the
    intents and voids they hold, and the lines that are damaged (index, what is wrong, bytes)."""

    size: int = 0
    lines: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    found: WriterIntents = field(default_factory=lambda: WriterIntents("", ""))
    bad: list[tuple[int, str, bytes]] = field(default_factory=list)

    def grown(self, data: bytes) -> _Parsed:
        """This object read again: the lines added since parsed (a changed prefix: all of it again)."""
        start = self
        if len(data) < self.size or hashlib.sha256(data[: self.size]).digest() != self.hasher.digest():
            start = _Parsed()
        whole = data.rfind(b"\n") + 1  # a last line without its newline never finished: its call was never sent
        found = WriterIntents("", "", dict(start.found.calls), set(start.found.voided))
        out = _Parsed(whole, start.lines, start.hasher.copy(), found, list(start.bad))
        out.hasher.update(data[start.size : whole])
        for line in data[start.size : whole].split(b"\n")[:-1]:
            out.lines += 1
            if not line.strip():
                continue
            problem = check(line)
            try:
                if problem is None:
                    found.add(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                problem = "is not an intent the pipeline writes"
            if problem is not None:
                out.bad.append((out.lines - 1, problem, line))
        return out


_PARSED: dict[tuple[str, str], _Parsed] = {}  # (store, key) -> its lines parsed, for the next read of it
_PARSED_LOCK = threading.Lock()


def _parsed(store: Store, key: str, data: bytes) -> _Parsed:
    with _PARSED_LOCK:
        before = _PARSED.get((store.url, key), _Parsed())
    now = before.grown(data)
    with _PARSED_LOCK:
        _PARSED[(store.url, key)] = now
    return now


def read_intents(store: Store) -> IntentScan:
    """Read every intents log. A log read again as it grows (each periodic consolidation of a run reads
    the run's own) has only its new lines parsed; the lines read before are checked by their sha256."""
    found = IntentScan()
    by_writer: dict[tuple[str, str], WriterIntents] = {}
    for info in intent_objects(store):
        run_id, writer = layout.intents_writer(info.key) or ("", "")
        intents = by_writer.setdefault((run_id, writer), WriterIntents(run_id, writer))
        parsed = _parsed(store, info.key, store.get(info.key) or b"")
        found.listing.append((info.key, info.size, info.version))
        intents.calls.update(parsed.found.calls)
        intents.voided.update(parsed.found.voided)
        found.bad += [BadLine(len(found.listing) - 1, n, what, raw) for n, what, raw in parsed.bad]
    listed = {key for key, _, _ in found.listing}
    with _PARSED_LOCK:  # logs removed since are forgotten
        for gone in [k for k in _PARSED if k[0] == store.url and k[1] not in listed]:
            del _PARSED[gone]
    found.writers = list(by_writer.values())
    return found


def recorded_among(frame: pl.DataFrame, wanted: list[str]) -> list[str]:
    """The record ids of a ledger frame that are among `wanted` (the ids the intents logs name)."""
    return frame.filter(pl.col("id").is_in(wanted))["id"].to_list() if wanted else []


def unsettled(scan: IntentScan, recorded: set[str]) -> list[dict[str, Any]]:
    """Per writer, the calls whose outcome never reached the ledger (`recorded`: the record ids it holds
    among `scan.record_ids`): run, writer, how many, and their worst case."""
    out = []
    for w in scan.writers:
        open_calls = [n for key, n in w.calls.items() if key[0] not in recorded and key not in w.voided]
        if open_calls:
            out.append({"run_id": w.run_id, "writer": w.writer, "calls": len(open_calls), "nano": sum(open_calls)})
    return out


def _in_flight(store: Store, entry: dict[str, Any], leases: dict[str, Any]) -> bool:
    """True while the writer still runs: it holds its run's lease (and, on this host, its process lives)."""
    process, run_id = writer_process(str(entry["writer"])), str(entry["run_id"])
    if process is None or Holder(*process, run_id).gone():
        return False
    if run_id not in leases:
        leases[run_id] = live_lease(store, layout.run_lock(run_id))
    held = leases[run_id]
    return held is not None and (held[0].host, held[0].pid) == process


@dataclass
class Booked:
    """Calls in flight at a crash, booked at their worst case: in all and by run (calls, nano-dollars)."""

    by_run: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(c for c, _ in self.by_run.values())

    @property
    def nano(self) -> int:
        return sum(n for _, n in self.by_run.values())

    def of(self, run_id: str) -> int:
        return self.by_run.get(run_id, (0, 0))[1]

    def line(self) -> str:
        runs = ", ".join(f"{run} {calls}" for run, (calls, _) in sorted(self.by_run.items()))
        return (
            f"in flight at the crash: {self.calls} call(s) ({runs}) whose answers never reached the ledger, "
            f"booked at their worst case ${to_usd(self.nano):.4f}: the provider may have billed them"
        )


def booked_at_crash(store: Store, usage: dict[str, Any]) -> Booked:
    """The usage view's unsettled intents whose writer is gone (not those of a run still generating)."""
    booked, leases = Booked(), {}
    for entry in usage.get("unsettled") or []:
        if _in_flight(store, entry, leases):
            continue
        calls, nano = booked.by_run.get(str(entry["run_id"]), (0, 0))
        booked.by_run[str(entry["run_id"])] = (calls + int(entry["calls"]), nano + int(entry["nano"]))
    return booked
