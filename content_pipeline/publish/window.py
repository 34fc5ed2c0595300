"""Release windows and the UI approval a policy incident requires, kept in the store (cells) so every worker
obeys them: `publish approve --until TIME` approves live publishing until then (it stands for
PUBLISH_APPROVAL_GRANTED), and nothing goes out live once it has closed; a policy quarantine makes an
approver's yes in the UI required for every publish run for 48 hours, whatever the signals say."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from content_pipeline.errors import StoreError
from content_pipeline.publish.governance import Gates
from content_pipeline.publish.halt import halted
from content_pipeline.store import Store, layout
from content_pipeline.store.cell import Cell

POLICY_HOURS = 48.0  # how long a policy incident requires an approver's yes in the UI (playbook C4)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now() -> datetime:
    """The time windows are judged by (a test moves it by replacing this function, never by sleeping)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Gate:
    """A window (`until`: live publishing approved until then) or a requirement (`until`: a UI approval is
    required until then), who set it, when, and why."""

    until: datetime
    by: str
    at: str
    reason: str = ""

    def open(self, at: datetime | None = None) -> bool:
        return (at or now()) < self.until

    def shown(self) -> str:
        return f"{self.until:%Y-%m-%d %H:%M} UTC"


def _cell(store: Store, key: str) -> Cell:
    return Cell(store, key)


def _read(store: Store, key: str) -> Gate | None:
    """The gate in `key`; one that does not read back counts as closed at the epoch (nothing goes live)."""
    raw, version = _cell(store, key).read()
    if raw is None:
        return None
    try:
        body = json.loads(raw)
        return Gate(datetime.fromisoformat(body["until"]), str(body["by"]), str(body["at"]), str(body["reason"]))
    except (ValueError, KeyError, TypeError):
        return Gate(EPOCH, "?", "?", f"{_cell(store, key).where(version)} is damaged: treated as closed")


def _write(store: Store, key: str, gate: Gate) -> None:
    cell = _cell(store, key)
    for _ in range(10):
        _, version = cell.read()
        body = {**asdict(gate), "until": gate.until.isoformat(timespec="seconds")}
        if cell.swap(json.dumps(body).encode(), version):
            return
    raise StoreError(f"{key}: it kept changing: try again")


def release_window(store: Store) -> Gate | None:
    return _read(store, layout.PUBLISH_WINDOW)


def approve_until(store: Store, until: datetime, by: str, reason: str = "") -> Gate:
    """Open (or move) the release window: live publishing approved until `until` (UTC when naive)."""
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    gate = Gate(until.astimezone(UTC), by, now().isoformat(timespec="seconds"), reason)
    _write(store, layout.PUBLISH_WINDOW, gate)
    return gate


def close_window(store: Store, by: str) -> Gate:
    """End the release window now: nothing goes out live until an approval opens another."""
    return approve_until(store, now(), by, "closed by hand")


def approval_required(store: Store) -> Gate | None:
    """The policy incident's requirement while it lasts (None once it has passed, or when there is none)."""
    gate = _read(store, layout.PUBLISH_UI_REQUIRED)
    return gate if gate is not None and gate.open() else None


def require_approval(store: Store, hours: float, reason: str, by: str) -> Gate:
    """Require an approver's yes in the UI for every publish run for the next `hours` (a later end stands)."""
    held = approval_required(store)
    until = now() + timedelta(hours=hours)
    if held is not None and held.until > until:
        return held
    gate = Gate(until, by, now().isoformat(timespec="seconds"), reason)
    _write(store, layout.PUBLISH_UI_REQUIRED, gate)
    return gate


def gates(store: Store) -> Gates:
    """What the store says of publishing now: the halt, the release window, a required UI approval."""
    window, required = release_window(store), approval_required(store)
    closed = opened = None
    if window is not None and window.open():
        opened = f"approved until {window.shown()} by {window.by}"
    elif window is not None:
        why = f": {window.reason}" if window.reason else ""
        closed = f"the release window closed at {window.shown()} (approved by {window.by}{why})"
    needed = f"a UI approval is required until {required.shown()} ({required.reason})" if required else None
    return Gates(halted(store), closed, opened, needed)
