"""The run's gate on calls in flight: one bound over every chunk in the run's event loop, and a new loop
(after the last chunk closed the old one) gets a gate of its own."""

from __future__ import annotations

import asyncio
import threading

from content_pipeline.generation.loop import CallGate, ChunkLoop
from content_pipeline.settings import load_settings


def test_the_gate_bounds_calls_over_every_chunk_and_gives_every_slot_back() -> None:
    gate, now, done = CallGate(5), [0], [0]
    peak = [0]

    async def call(delay: float) -> None:
        async with gate:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
            await asyncio.sleep(delay)
            now[0] -= 1
            done[0] += 1

    async def chunks() -> None:  # three chunks of 20 calls each, as the run's one loop runs them
        await asyncio.gather(*(call(0.01 * (i + 1)) for i in range(3) for _ in range(20)))

    asyncio.run(chunks())
    assert done[0] == 60 and peak[0] == 5 == gate.peak and gate.in_flight == 0


def test_a_cancelled_call_gives_its_slot_back() -> None:
    async def main() -> None:
        gate = CallGate(1)
        await gate.__aenter__()
        waiter = asyncio.create_task(gate.__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await gate.__aexit__()
        async with asyncio.timeout(1):
            async with gate:
                assert gate.in_flight == 1
        assert gate.in_flight == 0

    asyncio.run(main())


def test_chunks_after_the_loop_closed_get_a_new_loop_and_a_gate_that_works_in_it() -> None:
    """A semaphore is bound to the loop it first waits in: the gate is made anew with each loop, so a
    chunk started after the last one closed the loop neither fails nor deadlocks."""
    loop = ChunkLoop(load_settings(concurrency=2))
    seen: list[int] = []

    async def work(client: object) -> int:
        async def one() -> None:
            async with loop.gate:
                seen.append(loop.gate.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(one() for _ in range(6)))  # waiters: the semaphore binds to this loop
        return len(seen)

    for _ in range(2):
        finished: list[int] = []
        thread = threading.Thread(target=lambda out=finished: out.append(loop.run(work)))
        thread.start()
        thread.join(10)
        assert finished and not loop.running  # the loop closed after its only chunk
    assert len(seen) == 12 and max(seen) == 2
