"""The approval signals: a live publish only when all three are truthy (or an approver said yes for this
run), otherwise a simulation that names what is missing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SIGNALS = ("ALLOW_AUTONOMOUS_PUBLISH", "PUBLISH_APPROVAL_GRANTED", "GOVERNANCE_APPROVED")
_TRUTHY = frozenset({"true", "1", "yes"})


def truthy(value: object) -> bool:
    """`true`, `1` or `yes` in any case, spaces around ignored; anything else (empty, unset, `on`, `y`, `2`)
    is false."""
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip().lower() in _TRUTHY


@dataclass(frozen=True)
class Decision:
    """Whether a publish goes out live, and if not, why (the signals missing, or a halt)."""

    live: bool
    missing: tuple[str, ...] = ()
    halted: str | None = None
    approver: str | None = None

    @property
    def reason(self) -> str:
        if self.live:
            return f"live: approved by {self.approver}" if self.approver else "live: all three signals are set"
        if self.halted is not None:
            return f"simulated: publishing is halted ({self.halted})"
        return "simulated: " + ", ".join(self.missing) + (" is" if len(self.missing) == 1 else " are") + " not truthy"


def decide(signals: Mapping[str, object], approver: str | None = None, halted: str | None = None) -> Decision:
    """Live only with every signal truthy; an approver's yes in the UI stands for PUBLISH_APPROVAL_GRANTED
    for this run. A halt always simulates."""
    given = {name: truthy(signals.get(name)) for name in SIGNALS}
    if approver:
        given["PUBLISH_APPROVAL_GRANTED"] = True
    missing = tuple(name for name in SIGNALS if not given[name])
    if halted is not None:
        return Decision(False, missing, halted, approver)
    return Decision(not missing, missing, None, approver)
