"""The provider's limits as Prefect global concurrency limits, shared by every worker on the server."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import concurrency, rate_limit
from prefect.exceptions import ObjectNotFound

from content_pipeline.settings import Settings

SLOT_LEASE_S = 60.0  # the in-flight slots are a lease Prefect renews while the run lives: a dead run's expire


class PrefectLimits:
    """A chunk holds its in-flight slots for its whole life (one acquisition, not one per call), and
    request permits of the rate limit are taken in batches: per-call acquisitions cost ~100 ms each
    on the server and would cap the run far below the provider's rate."""

    def __init__(self, rate_name: str, concurrency_name: str, max_slots: int, batch: int) -> None:
        self.rate_name, self.concurrency_name = rate_name, concurrency_name
        self.max_slots, self.batch = max_slots, batch
        self._permits = 0
        self._lock = threading.Lock()

    @asynccontextmanager
    async def chunk(self, slots: int) -> AsyncIterator[None]:
        async with concurrency(
            self.concurrency_name, occupy=min(slots, self.max_slots), strict=True, lease_duration=SLOT_LEASE_S
        ):
            yield

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        while True:
            with self._lock:
                if self._permits:
                    self._permits -= 1
                    break
            await rate_limit(self.rate_name, occupy=self.batch, strict=True)
            with self._lock:
                self._permits += self.batch
        yield


def prefect_limits(settings: Settings, per_chunk: int) -> PrefectLimits | None:
    """With LLM_GLOBAL_LIMITS, the Prefect global limits that exist on the server; None otherwise."""
    if not settings.llm_global_limits:
        return None
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        try:
            rate = client.read_global_concurrency_limit_by_name(settings.llm_rate_limit_name)
            inflight = client.read_global_concurrency_limit_by_name(settings.llm_concurrency_limit_name)
        except ObjectNotFound:
            logger.warning(
                "LLM_GLOBAL_LIMITS is on but the limits %r / %r do not exist on the server: `make up` creates them",
                settings.llm_rate_limit_name,
                settings.llm_concurrency_limit_name,
            )
            return None
    batch = max(1, min(per_chunk, rate.limit, 10))
    logger.info(
        "shared limits: %d LLM calls in flight over all workers (%r), %g requests/s (%r)",
        inflight.limit,
        inflight.name,
        rate.slot_decay_per_second,
        rate.name,
    )
    return PrefectLimits(rate.name, inflight.name, inflight.limit, batch)
