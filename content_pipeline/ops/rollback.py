"""`templates rollback [--to ID]`: the active template set brought back to the last known good one (playbook B3),
read from the recorded changes (template-rank --apply, templates --add, earlier rollbacks), recorded as a
decision itself; a change record that does not read back is named, never trusted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from content_pipeline.errors import BadInputError
from content_pipeline.generation.templates import read_active, write_active
from content_pipeline.ops.template_rank import record_decision
from content_pipeline.store import Store, layout


@dataclass(frozen=True)
class Change:
    """One applied change of the active set: its id, when, what made it, and the set before and after."""

    id: str
    at: str
    kind: str
    before: dict[str, int]
    after: dict[str, int]

    def line(self) -> str:
        return f"{self.id}  {self.at}  {self.kind:<8}  {self.before} -> {self.after}"


@dataclass
class History:
    """The applied changes, oldest first, and the records that did not read back (named)."""

    changes: list[Change] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)


def _weights(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not value or not all(isinstance(w, int) and w >= 1 for w in value.values()):
        raise ValueError("not an active set")
    return {str(k): int(w) for k, w in value.items()}


def history(store: Store) -> History:
    """Every recorded decision that changed the active set, oldest first."""
    found = History()
    for info in sorted(store.list(layout.TEMPLATE_DECISIONS), key=lambda i: i.key):
        ident = info.key[len(layout.TEMPLATE_DECISIONS) :].removesuffix(".json")
        try:
            body = json.loads(store.get(info.key) or b"")
            if not body.get("applied") and not body.get("delta", {}).get("applied"):
                continue
            before, after = _weights(body["active_before"]), _weights(body["active_after"])
            found.changes.append(Change(ident, str(body["at"]), str(body.get("kind", "rank")), before, after))
        except (ValueError, KeyError, TypeError, AttributeError):
            found.damaged.append(f"{info.key}: not a decision record")
    return found


def _target(changes: list[Change], current: dict[str, int], to: str | None) -> tuple[dict[str, int], str]:
    """The set to restore and why: the set change `to` made, or the one before the newest change (not itself a
    rollback) that made the current set."""
    if to is not None:
        named = [c for c in changes if c.id == to]
        if not named:
            raise BadInputError(
                f"templates rollback --to {to}: no recorded change has that id (`templates` lists them)"
            )
        return named[0].after, f"the set change {to} made"
    for change in reversed(changes):
        if change.kind != "rollback" and change.after == current:
            return change.before, f"the set before change {change.id} ({change.kind}, {change.at})"
    raise BadInputError(
        "templates rollback: no recorded change made the current active set: name the set to go back to with "
        "--to ID (`templates` lists the changes)"
    )


def rollback(store: Store, to: str | None = None) -> list[str]:
    """Make the last known good set (or change `to`'s) active, recorded as a decision; its lines."""
    found = history(store)
    current, version = read_active(store)
    restore, why = _target(found.changes, current, to)
    lines = [f"damaged decision record, not trusted: {d}" for d in found.damaged]
    if restore == current:
        return [*lines, f"templates rollback: the active set is already {current} ({why}): nothing changed"]
    write_active(store, restore, version)
    body = {"kind": "rollback", "applied": True, "to": to, "why": why}
    key = record_decision(store, body, current, restore, True)
    return [*lines, f"templates rollback: active set {current} -> {restore} ({why})", f"decision recorded: {key}"]
