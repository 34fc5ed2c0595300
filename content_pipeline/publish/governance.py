"""The approval signals: a live publish only when all three are truthy (or an approver said yes in the UI
for this run), otherwise a simulation that names what is missing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

SIGNALS = ("ALLOW_AUTONOMOUS_PUBLISH", "PUBLISH_APPROVAL_GRANTED", "GOVERNANCE_APPROVED")
GRANTED = "PUBLISH_APPROVAL_GRANTED"
_TRUTHY = frozenset({"true", "1", "yes"})


def truthy(value: object) -> bool:
    """`true`, `1` or `yes` in any case, spaces around ignored; anything else (empty, unset, `on`, `y`, `2`)
    is false."""
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip().lower() in _TRUTHY


@dataclass(frozen=True)
class Approval:
    """An approver's answer in the Prefect UI for one run: who, when, yes or no, on what (the slugs and
    payload hashes shown); `approved` False with no approver is a wait that timed out."""

    approved: bool
    approver: str | None
    at: str
    note: str = ""
    shown: tuple[str, ...] = ()  # `slug:payload-hash` of every post the approver saw
    until: str | None = None  # an approval for a window: later runs go out without asking until then (ISO)

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "shown": list(self.shown)}

    def said(self) -> str:
        if self.approver is None:
            return self.note or f"no approver answered in the UI by {self.at}"
        return f"{'approved' if self.approved else 'rejected'} in the UI by {self.approver} at {self.at}"


@dataclass(frozen=True)
class Gates:
    """What the store says beyond the signals: a halt, a release window (`window_closed`: why nothing may go
    live any more; `window_open`: who approved until when), and a UI approval a policy incident requires."""

    halted: str | None = None
    window_closed: str | None = None
    window_open: str | None = None
    ui_required: str | None = None


@dataclass(frozen=True)
class Decision:
    """Whether a publish goes out live, and if not, why (the signals missing, a halt, a closed window, a
    required UI approval, a UI answer)."""

    live: bool
    missing: tuple[str, ...] = ()
    halted: str | None = None
    approval: Approval | None = None
    blocked: str | None = None  # a closed release window, or a UI approval required and not given
    window: str | None = None  # the release window that stood for PUBLISH_APPROVAL_GRANTED

    @property
    def reason(self) -> str:
        said = f" ({self.approval.said()})" if self.approval is not None else ""
        if self.live:
            if self.approval:
                return f"live: {self.approval.said()}"
            return f"live: {self.window}" if self.window else "live: all three signals are set"
        if self.halted is not None:
            return f"simulated: publishing is halted ({self.halted})"
        if self.blocked is not None:
            return f"simulated: {self.blocked}{said}"
        verb = " is" if len(self.missing) == 1 else " are"
        return "simulated: " + ", ".join(self.missing) + verb + " not truthy" + said


def decide(signals: Mapping[str, object], approval: Approval | None = None, gates: Gates | None = None) -> Decision:
    """Live only with every signal truthy. A UI answer (`approval`) stands for PUBLISH_APPROVAL_GRANTED for
    this run, whatever the environment says: yes grants it, no or no answer withholds it; an open release
    window stands for it too. A halt, a closed window, or a UI approval required and not given, always
    simulate."""
    gates = gates or Gates()
    yes = approval is not None and approval.approved and bool(approval.approver)
    given = {name: truthy(signals.get(name)) for name in SIGNALS}
    if approval is not None:
        given[GRANTED] = yes
    elif gates.window_open is not None:
        given[GRANTED] = True
    missing = tuple(name for name in SIGNALS if not given[name])
    if gates.halted is not None:
        return Decision(False, missing, gates.halted, approval)
    blocked = gates.window_closed or (gates.ui_required if not yes else None)
    if blocked is not None:
        return Decision(False, missing, None, approval, blocked)
    window = gates.window_open if approval is None else None
    return Decision(not missing, missing, None, approval, None, window)
