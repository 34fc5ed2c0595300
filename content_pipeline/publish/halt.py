"""The halt switch: kept in the store (a cell), so every worker obeys it; a halted publish simulates and
says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from content_pipeline.errors import StoreError
from content_pipeline.store import Store, layout
from content_pipeline.store.cell import Cell


def _cell(store: Store) -> Cell:
    return Cell(store, layout.PUBLISH_HALT)


def halted(store: Store) -> str | None:
    """The reason publishing is halted (with when and by whom), or None while it is not; a halt that does
    not read back counts as a halt (publishing stays safe)."""
    raw, version = _cell(store).read()
    if raw is None:
        return None
    try:
        entry = json.loads(raw)
        return f"{entry['reason']} (halted {entry['at']} by {entry['by']})"
    except (ValueError, KeyError, TypeError):
        return f"the halt switch {_cell(store).where(version)} is damaged: treated as halted"


def halt(store: Store, reason: str, by: str) -> None:
    """Halt publishing everywhere until `resume`."""
    if not reason.strip():
        raise StoreError("publish halt: give a --reason")
    cell = _cell(store)
    for _ in range(10):
        _, version = cell.read()
        entry = {"reason": reason.strip(), "by": by, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        if cell.swap(json.dumps(entry).encode(), version):
            return
    raise StoreError("publish halt: the halt switch kept changing: try again")


def resume(store: Store) -> bool:
    """Lift a halt; False when publishing was not halted."""
    cell = _cell(store)
    raw, version = cell.read()
    return raw is not None and cell.release(version)
