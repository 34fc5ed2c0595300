"""One Prefect task per pipeline stage; each calls the core and logs what it did."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import TaskRun
from prefect.concurrency.asyncio import concurrency, rate_limit
from prefect.exceptions import ObjectNotFound
from prefect.states import State

from content_pipeline import batch as batch_core
from content_pipeline.audit import AuditResult, audit
from content_pipeline.catalogue import Item
from content_pipeline.errors import StoreIOError
from content_pipeline.generate import GenerationContext, run_chunk
from content_pipeline.inventory import Inventory, take_inventory
from content_pipeline.preflight import Preflight, preflight
from content_pipeline.settings import Settings
from content_pipeline.store import Store
from content_pipeline.views import Consolidation, consolidate, sync_checkpoint


def retry_on_store_io(task: object, task_run: TaskRun, state: State) -> bool:
    """Retry only transient store failures (disk, network), never bad input or a held lease."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return isinstance(exc, (StoreIOError, OSError))


STORE_IO = {
    "retries": 3,
    "retry_delay_seconds": [1, 2, 4],
    "retry_condition_fn": retry_on_store_io,
    "cache_policy": NONE,
}
CHUNK_TAG = "llm-generation"  # `prefect concurrency-limit create llm-generation N` caps chunks across runs


@task(name="inventory", **STORE_IO)
def inventory_task(store: Store, settings: Settings, run_id: str) -> Inventory:
    inv = take_inventory(store, settings.catalogue, settings.scope, run_id, settings.s3_options())
    logger = get_run_logger()
    for row in inv.catalogue.invalid:
        logger.warning("invalid catalogue row skipped: %s", row.line(settings.catalogue))
    logger.info(
        "catalogue: %d rows, %d valid, %d invalid; needs content: %d (scope %s)",
        inv.catalogue.rows,
        len(inv.catalogue.items),
        len(inv.catalogue.invalid),
        len(inv.needs),
        settings.scope,
    )
    return inv


@task(name="batch", **STORE_IO)
def batch_task(store: Store, settings: Settings, run_id: str, needs: list[Item], hold: bool) -> list[Item]:
    """Claim up to LIMIT items. `hold` (go-live) ties the claims to this process rather than to the TTL
    alone, and waits up to LEASE_WAIT_S for another run's builder; the batch command fails at once."""
    items, freed, took_over = batch_core.build_batch(
        store,
        run_id,
        needs,
        settings.limit,
        pid=os.getpid() if hold else None,
        lease_ttl_s=settings.lease_ttl_s,
        claim_ttl_s=settings.claim_ttl_s,
        wait_s=settings.lease_wait_s if hold else 0.0,
    )
    logger = get_run_logger()
    if took_over:
        logger.warning("took over the batch-builder lease left by %s", took_over)
    for run in freed:
        logger.warning("freed the claims of run %s, which is gone", run)
    logger.info("batch: claimed %d item(s) for run %s", len(items), run_id)
    return items


@task(name="preflight", **STORE_IO)
def preflight_task(store: Store, settings: Settings, run_id: str, planned: list[Item] | None = None) -> Preflight:
    result = preflight(store, settings, run_id, planned)
    logger = get_run_logger()
    for warning in result.warnings:
        logger.warning(warning)
    logger.info("preflight: %d item(s) ready", len(result.items))
    return result


class PrefectLimits:
    """The provider's limits as Prefect global concurrency limits, shared by every worker on the server.
    A chunk holds its in-flight slots for its whole life (one acquisition, not one per call), and
    request permits of the rate limit are taken in batches: per-call acquisitions cost ~100 ms each
    on the server and would cap the run far below the provider's rate."""

    def __init__(self, rate_name: str, concurrency_name: str, max_slots: int, batch: int) -> None:
        self.rate_name, self.concurrency_name = rate_name, concurrency_name
        self.max_slots, self.batch = max_slots, batch
        self._permits = 0
        self._lock = threading.Lock()

    @asynccontextmanager
    async def chunk(self, slots: int) -> AsyncIterator[None]:
        async with concurrency(self.concurrency_name, occupy=min(slots, self.max_slots), strict=True):
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


@task(name="generate-chunk", cache_policy=NONE)
def generate_chunk_task(ctx: GenerationContext, items: list[Item], concurrency: int) -> int:
    """One chunk of items, `concurrency` calls in flight; no task retry (the ledger already holds what finished)."""
    records = run_chunk(ctx, items, concurrency)
    get_run_logger().info("chunk done: %d outcome(s) of %d item(s)", len(records), len(items))
    return len(records)


def chunk_task() -> Task[..., int]:
    """The chunk task for this run: tagged `CHUNK_TAG` when a tag limit by that name exists on the server
    (checked once per run), so the limit caps chunks across runs. Untagged otherwise: every tagged task
    run asks the server for a slot before it starts, 0.1-2 s at the start of a run for nothing."""
    with get_client(sync_client=True) as client:
        try:
            client.read_concurrency_limit_by_tag(CHUNK_TAG)
        except ObjectNotFound:
            return generate_chunk_task
    return generate_chunk_task.with_options(tags=[CHUNK_TAG])


@task(name="adopt-claims", **STORE_IO)
def adopt_task(store: Store, settings: Settings, run_id: str) -> int:
    """Tie the run's claims to this process, so a killed generate frees them at once."""
    return len(batch_core.adopt(store, run_id, os.getpid(), settings.claim_ttl_s))


@task(name="release-claims", **STORE_IO)
def release_task(store: Store, run_id: str) -> None:
    batch_core.release(store, run_id)


@task(name="consolidate", **STORE_IO)
def consolidate_task(store: Store, verify: bool = False) -> Consolidation | None:
    """Rebuild the views; with `verify`, also rewrite views whose objects were changed by hand."""
    result = consolidate(store, verify=verify)
    logger = get_run_logger()
    if result is not None:
        for line in result.repaired:
            logger.warning("ledger repaired: %s", line)
        logger.info(
            "consolidate: %d ledger records -> %d successes, %d rejects; changed: %s",
            result.records,
            result.successes,
            result.rejects,
            ", ".join(result.changed) or "nothing",
        )
    return result


@task(name="audit", **STORE_IO)
def audit_task(store: Store) -> AuditResult:
    result = audit(store)
    logger = get_run_logger()
    for violation in result.violations:
        logger.error(violation)
    for note in result.notes:
        logger.warning(note)
    logger.info("audit: %s", "all invariants hold" if result.ok else f"{len(result.violations)} violation(s)")
    return result


@task(name="sync", **STORE_IO)
def sync_task(store: Store) -> bool:
    changed = sync_checkpoint(store)
    get_run_logger().info("sync: checkpoint %s", "rewritten from master" if changed else "already matches master")
    return changed
