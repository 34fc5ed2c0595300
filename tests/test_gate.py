"""The in-flight gate shared by chunks that run in separate threads, each with its own event loop."""

from __future__ import annotations

import asyncio
import threading

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
