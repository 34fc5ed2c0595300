"""Batches held: finished at the provider with answers collect could not read (no output file, an output or
error file whose download failed or broke off); their outcomes are unknown, their reservations stay booked,
and every collect tries them again."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from content_pipeline.claims.pending import BatchPlan, read_plans
from content_pipeline.money import to_usd
from content_pipeline.store import Store, layout
from content_pipeline.store.lease import iso_at

HELD = "held.json"  # beside a plan not collected: why its batch's answers could not be read, since when


@dataclass(frozen=True)
class Held:
    """A batch held as unknown: its run, name, batch id, why, since when and how often tried, its reservation."""

    run_id: str
    name: str
    batch_id: str
    why: str
    since: float
    tries: int
    reserved_nano: int

    def line(self) -> str:
        return (
            f"{self.run_id}/{self.name} ({self.batch_id}) held since {iso_at(self.since)} ({self.tries} collect(s)): "
            f"{self.why}; ${to_usd(self.reserved_nano):.4f} stays booked"
        )


def hold(store: Store, plan: BatchPlan, batch_id: str, why: str) -> Held:
    """Record (again) that the plan's batch is held: its first time kept, the tries counted."""
    key = layout.batch_key(plan.run_id, plan.name, HELD)
    before = _note(store.get(key))
    note = {
        "batch_id": batch_id,
        "why": why,
        "since": before.get("since", time.time()),
        "tries": int(before.get("tries", 0)) + 1,
        "last_tried": time.time(),
    }
    store.put(key, json.dumps(note).encode())
    return Held(plan.run_id, plan.name, batch_id, why, float(note["since"]), note["tries"], plan.reserved_nano)


def held_batches(store: Store) -> list[Held]:
    """Every batch held now (its plan not collected yet), oldest first."""
    found = []
    for state in read_plans(store):
        plan = state.plan
        note = _note(store.get(layout.batch_key(plan.run_id, plan.name, HELD)))
        if note:
            since, tries = float(note.get("since", 0.0)), int(note.get("tries", 1))
            batch_id, why = str(note.get("batch_id")), str(note.get("why"))
            found.append(Held(plan.run_id, plan.name, batch_id, why, since, tries, plan.reserved_nano))
    return sorted(found, key=lambda held: held.since)


def _note(raw: bytes | None) -> dict[str, Any]:
    try:
        note = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return note if isinstance(note, dict) else {}
