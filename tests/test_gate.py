"""The in-flight gate shared by chunks that run in separate threads, each with its own event loop."""

from __future__ import annotations

import asyncio
import threading
import time

from content_pipeline.gate import InFlightGate


def test_the_gate_holds_the_total_across_event_loops_and_hands_slots_on() -> None:
    gate, lock = InFlightGate(5), threading.Lock()
    now, peak, done = [0], [0], [0]

    async def call(delay: float) -> None:
        async with gate:
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
            await asyncio.sleep(delay)
            with lock:
                now[0] -= 1
                done[0] += 1

    def chunk(n: int, delay: float) -> None:
        async def main() -> None:
            await asyncio.gather(*(call(delay) for _ in range(n)))

        asyncio.run(main())

    threads = [threading.Thread(target=chunk, args=(20, 0.01 * (i + 1))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert done[0] == 60 and peak[0] == 5 and gate.free == 5


def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    async def main() -> None:
        gate = InFlightGate(1)
        await gate.__aenter__()
        waiter = asyncio.create_task(gate.__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await gate.__aexit__()
        assert gate.free == 1
        async with gate:
            assert gate.free == 0

    asyncio.run(main())


def test_a_waiter_cancelled_while_its_slot_is_on_the_way_passes_it_on_once() -> None:
    async def main() -> None:
        gate = InFlightGate(1)
        await gate.__aenter__()
        first = asyncio.create_task(gate.__aenter__())
        second = asyncio.create_task(gate.__aenter__())
        await asyncio.sleep(0.01)
        await gate.__aexit__()  # the slot goes to `first` at once (same loop)
        first.cancel()  # ... which is cancelled before it runs: the slot goes on to `second`, once
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.wait_for(second, 1)
        assert gate.free == 0
        await gate.__aexit__()
        assert gate.free == 1

    asyncio.run(main())


def test_a_slot_handed_across_loops_to_a_cancelled_waiter_is_passed_on_once() -> None:
    gate = InFlightGate(1)
    ready, go = threading.Event(), threading.Event()

    async def holder() -> None:
        await gate.__aenter__()
        ready.set()
        await asyncio.to_thread(go.wait, 5)
        await gate.__aexit__()  # hands the slot to the waiter in the other loop

    async def waiter_side() -> None:
        ready.wait(5)
        waiter = asyncio.create_task(gate.__aenter__())
        await asyncio.sleep(0.01)
        assert len(gate._waiters) == 1
        go.set()
        for _ in range(500):  # this loop is blocked: the slot cannot reach the waiter before it is cancelled
            if not gate._waiters:
                break
            time.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await asyncio.sleep(0.05)

    other = threading.Thread(target=lambda: asyncio.run(holder()))
    other.start()
    asyncio.run(waiter_side())
    other.join(5)
    assert gate.free == 1
