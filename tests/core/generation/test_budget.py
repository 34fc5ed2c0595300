"""The run budget: a call whose worst case does not fit waits for the calls in flight instead of stopping the
run, and the run stops only when it does not fit with nothing in flight."""

from __future__ import annotations

import asyncio
import re

import pytest

from content_pipeline.generation.budget import BudgetExhausted, RunBudget
from content_pipeline.money import to_nano, to_usd, usd


def test_a_call_that_does_not_fit_waits_for_one_in_flight_to_settle() -> None:
    budget = RunBudget(to_usd(100))  # 100 nano-dollars

    async def scenario() -> list[str]:
        events: list[str] = []
        first = await budget.reserve_in_turn(60)
        waiting = asyncio.ensure_future(budget.reserve_in_turn(60))
        await asyncio.sleep(0.01)
        events.append("waiting" if not waiting.done() else "reserved too early")
        budget.settle(first, 20)  # it cost less than its worst case: 80 left
        second = await asyncio.wait_for(waiting, 1)
        events.append(f"reserved {second.nano}, spent {budget.spent}, reserved {budget.reserved}")
        budget.settle(second, 30)
        with pytest.raises(BudgetExhausted, match=re.escape("spent $0.000000050, $0.000000050 left")):
            await budget.reserve_in_turn(51)  # 50 left and nothing in flight: the run stops
        return events

    assert asyncio.run(scenario()) == ["waiting", "reserved 60, spent 20, reserved 60"]
    assert budget.waited == 1 and budget.spent == 50 and budget.reserved == 0


def test_every_waiter_gives_up_once_nothing_is_in_flight_and_none_fits() -> None:
    budget = RunBudget(to_usd(100))

    async def scenario() -> list[object]:
        held = await budget.reserve_in_turn(90)
        waiters = [asyncio.ensure_future(budget.reserve_in_turn(50)) for _ in range(5)]
        await asyncio.sleep(0.01)
        budget.settle(held, 80)  # 20 left, nothing in flight: none of the five can ever fit
        return await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 1)

    outcomes = asyncio.run(scenario())
    assert [type(o) for o in outcomes] == [BudgetExhausted] * 5
    assert budget.spent == 80 and budget.reserved == 0


def test_the_budget_stop_names_what_was_spent_what_is_in_flight_and_the_budget() -> None:
    budget = RunBudget(0.01)
    first = budget.reserve(to_nano(0.004))
    budget.settle(first, to_nano(0.0031))  # $0.0031 spent
    budget.reserve(to_nano(0.0029))  # in flight
    with pytest.raises(BudgetExhausted) as stop:
        budget.reserve(to_nano(0.005))
    assert str(stop.value) == (
        "run budget $0.0100 reached: spent $0.0031, $0.0029 held by the calls in flight, $0.0040 left, "
        "the next call needs up to $0.0050"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "$0.00"),
        (250.0, "$250.00"),
        (1.5, "$1.50"),
        (0.0031, "$0.0031"),
        (0.002, "$0.0020"),
        (0.00003, "$0.000030"),
        (0.000061738, "$0.000062"),
        (5e-9, "$0.000000005"),
    ],
)
def test_money_is_shown_with_enough_digits_to_be_true(value: float, shown: str) -> None:
    assert usd(value) == shown
