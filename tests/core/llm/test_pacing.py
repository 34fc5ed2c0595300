"""A gentle start against a rate-limited provider: the slow start's window, on its own and through a whole
run against the fake provider over HTTP."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from content_pipeline.llm import slowstart
from content_pipeline.llm.pacing import Pacer
from content_pipeline.llm.slowstart import CLEAN, OTHER, RATE_LIMITED, SlowStart
from tests.conftest import make_item
from tests.support.helpers import fake_llm, run

HEADERS = {"x-ratelimit-limit-requests": "3000", "x-ratelimit-remaining-requests": "2999"}


def test_the_window_starts_at_one_and_doubles_with_each_clean_answer() -> None:
    ramp = SlowStart()
    assert ramp.try_take() is True
    assert ramp.try_take() is False  # one call in flight before any answer
    ramp.release(True, CLEAN)
    assert ramp.window == 2 and ramp.in_flight == 0
    assert [ramp.try_take() for _ in range(3)] == [True, True, False]
    ramp.release(True, CLEAN)
    ramp.release(True, CLEAN)
    assert ramp.window == 8


def test_a_429_halves_the_window_and_other_failures_leave_it() -> None:
    ramp = SlowStart(window=8)
    ramp.release(False, RATE_LIMITED)
    assert ramp.window == 4
    ramp.release(False, OTHER)
    assert ramp.window == 4
    for _ in range(5):
        ramp.release(False, RATE_LIMITED)
    assert ramp.window == 1  # never below one call


def test_the_ramp_ends_once_headers_are_read_or_the_window_is_wide_open() -> None:
    ramp = SlowStart()
    ramp.try_take()
    ramp.learned()
    assert ramp.try_take() is None  # no longer limits: nothing taken, nothing to give back
    ramp.release(True, CLEAN)
    assert ramp.in_flight == 0
    wide = SlowStart(open_at=16)
    for _ in range(4):
        wide.release(False, CLEAN)
    assert not wide.ramping and wide.try_take() is None


def test_a_disabled_slow_start_limits_nothing() -> None:
    assert SlowStart(enabled=False).try_take() is None
    assert Pacer(slow_start=False).ramp.ramping is False


def test_the_pacer_learns_from_rate_limit_headers_only() -> None:
    pacer = Pacer(slow_start=True)
    pacer.observe({"content-type": "application/json"})
    assert pacer.ramp.ramping
    pacer.observe(HEADERS)
    assert not pacer.ramp.ramping and pacer.interval == 0.0  # plenty left: no spacing either


def test_a_waiting_call_goes_when_the_window_has_room_and_never_waits_past_its_bound() -> None:
    ramp = SlowStart()

    async def main() -> tuple[bool, bool]:
        assert await ramp.enter()
        waiter = asyncio.ensure_future(ramp.enter())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # the window is full
        ramp.release(True, CLEAN)
        took = await asyncio.wait_for(waiter, 2)
        stuck = SlowStart()
        stuck.try_take()  # a call that never comes back
        started = time.monotonic()
        forced = await asyncio.wait_for(stuck.enter(max_wait_s=0.1), 2)
        assert time.monotonic() - started < 1.5
        return took, forced

    assert asyncio.run(main()) == (True, True)
    assert ramp.waited_calls == 1


def test_the_window_is_shared_by_event_loops_on_other_threads() -> None:
    pacer = Pacer(slow_start=True)
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    async def one() -> None:
        async with pacer.turn() as flight:
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            await asyncio.sleep(0.02)
            with lock:
                in_flight[0] -= 1
            flight.answered(True)

    def thread() -> None:
        async def many() -> None:
            await asyncio.gather(*(one() for _ in range(4)))

        asyncio.run(many())

    threads = [threading.Thread(target=thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] < 12 and pacer.ramp.in_flight == 0  # not all twelve at once; every slot given back
    assert pacer.ramp.window >= 8


def rate_limited_run(make_settings, write_catalogue, store, items: int) -> tuple[int, int]:
    """A run of `items` at concurrency 50 against 3000 RPM with 1% of a minute's allowance (30 requests) in
    its bucket: successes, and the 429s the provider answered."""
    rows = [make_item(n) for n in range(1, items + 1)]
    with fake_llm("sk-k", rpm=3000, burst=0.01, latency_ms=100, retry_after_s=0.2) as server:
        settings = make_settings(
            catalogue=write_catalogue(rows, "gentle.jsonl"),
            openai_api_key="sk-k",
            openai_base_url=server.url,
            concurrency=50,
        )
        report = run(settings, store)
        stats = server.stats()
    return report.stats.successes, stats["by_outcome"].get("rate_limited", 0)


def test_a_gentle_start_meets_no_429s_from_a_provider_with_a_small_burst(make_settings, write_catalogue, store) -> None:
    assert rate_limited_run(make_settings, write_catalogue, store, 60) == (60, 0)


def test_without_the_slow_start_the_same_run_meets_429s(make_settings, write_catalogue, store, monkeypatch) -> None:
    monkeypatch.setattr(slowstart, "ENABLED", False)  # every call at once, as before issue 18
    successes, rate_limited = rate_limited_run(make_settings, write_catalogue, store, 60)
    assert successes == 60 and rate_limited > 0  # the test above is not vacuous


@pytest.mark.parametrize("concurrency", [20, 50])
def test_a_provider_without_rate_limit_headers_still_gets_the_full_concurrency(
    make_settings, write_catalogue, store, concurrency: int
) -> None:
    rows = [make_item(n) for n in range(1, 4 * concurrency + 1)]
    with fake_llm("sk-k", latency_ms=300) as server:  # no RPM or TPM limit: no x-ratelimit headers
        settings = make_settings(
            catalogue=write_catalogue(rows, "open.jsonl"),
            openai_api_key="sk-k",
            openai_base_url=server.url,
            concurrency=concurrency,
        )
        report = run(settings, store)
        stats = server.stats()
    assert report.stats.successes == len(rows)
    assert stats["peak_in_flight"] == concurrency
