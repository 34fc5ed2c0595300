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

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "shown": list(self.shown)}

    def said(self) -> str:
        if self.approver is None:
            return self.note or f"no approver answered in the UI by {self.at}"
        return f"{'approved' if self.approved else 'rejected'} in the UI by {self.approver} at {self.at}"


@dataclass(frozen=True)
class Decision:
    """Whether a publish goes out live, and if not, why (the signals missing, a halt, a UI answer)."""

    live: bool
    missing: tuple[str, ...] = ()
    halted: str | None = None
    approval: Approval | None = None

    @property
    def reason(self) -> str:
        said = f" ({self.approval.said()})" if self.approval is not None else ""
        if self.live:
            return f"live: {self.approval.said()}" if self.approval else "live: all three signals are set"
        if self.halted is not None:
            return f"simulated: publishing is halted ({self.halted})"
        verb = " is" if len(self.missing) == 1 else " are"
        return "simulated: " + ", ".join(self.missing) + verb + " not truthy" + said


def decide(signals: Mapping[str, object], approval: Approval | None = None, halted: str | None = None) -> Decision:
    """Live only with every signal truthy. A UI answer (`approval`) stands for PUBLISH_APPROVAL_GRANTED for
    this run, whatever the environment says: yes grants it, no or no answer withholds it. A halt always
    simulates."""
    given = {name: truthy(signals.get(name)) for name in SIGNALS}
    if approval is not None:
        given[GRANTED] = approval.approved and bool(approval.approver)
    missing = tuple(name for name in SIGNALS if not given[name])
    if halted is not None:
        return Decision(False, missing, halted, approval)
    return Decision(not missing, missing, None, approval)
