"""The three approval signals: only all three truthy publish live; every other combination, with truthy
values written several ways and near-misses, simulates and names the missing signals."""

from __future__ import annotations

import itertools

import pytest

from content_pipeline.publish.governance import SIGNALS, Approval, Gates, decide, truthy

TRUTHY = [" TRUE ", "Yes", "1", "true", "yes ", True]
NEAR_MISSES = ["on", "y", "2", "truee", "0", "", None, "false", "no", " ", False]


@pytest.mark.parametrize("value", TRUTHY)
def test_truthy_values(value: object) -> None:
    assert truthy(value)


@pytest.mark.parametrize("value", NEAR_MISSES)
def test_near_misses_are_false(value: object) -> None:
    assert not truthy(value)


@pytest.mark.parametrize("values", list(itertools.product([" TRUE ", "Yes", "1", "on", "", None], repeat=3)))
def test_only_all_three_truthy_publish_live(values: tuple[object, ...]) -> None:
    signals = {name: value for name, value in zip(SIGNALS, values, strict=True) if value is not None}
    decision = decide(signals)
    expected_missing = tuple(name for name, value in zip(SIGNALS, values, strict=True) if not truthy(value))
    assert decision.live == (not expected_missing) and decision.missing == expected_missing
    if not decision.live:
        assert decision.reason.startswith("simulated: " + ", ".join(expected_missing))


def test_an_approver_stands_for_the_approval_signal_of_one_run_and_a_halt_always_simulates() -> None:
    signals = {"ALLOW_AUTONOMOUS_PUBLISH": "true", "GOVERNANCE_APPROVED": "yes"}
    assert decide(signals).missing == ("PUBLISH_APPROVAL_GRANTED",)
    yes = Approval(True, "ops@example.com", "2026-12-01T10:00:00+00:00")
    approved = decide(signals, yes)
    assert (
        approved.live and approved.reason == "live: approved in the UI by ops@example.com at 2026-12-01T10:00:00+00:00"
    )
    halted = decide({name: "1" for name in SIGNALS}, gates=Gates(halted="incident 42"))
    assert not halted.live and halted.reason == "simulated: publishing is halted (incident 42)"


def test_a_ui_rejection_or_no_answer_withholds_approval_even_when_the_environment_grants_it() -> None:
    signals = {name: "yes" for name in SIGNALS}
    no = decide(signals, Approval(False, "lee", "2026-12-01T10:00:00+00:00"))
    assert not no.live and no.missing == ("PUBLISH_APPROVAL_GRANTED",)
    assert no.reason.endswith("(rejected in the UI by lee at 2026-12-01T10:00:00+00:00)")
    silent = decide(signals, Approval(True, None, "2026-12-01T11:00:00+00:00"))
    assert not silent.live and "no approver answered in the UI" in silent.reason
