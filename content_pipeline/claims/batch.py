"""The batch: claim items for a run under the batch-builder lease; the run's own lease."""

from __future__ import annotations

from typing import Protocol, TypeVar

from content_pipeline.claims.queue import claim, live_claims, read_queue
from content_pipeline.store import Store, layout
from content_pipeline.store.host import Holder
from content_pipeline.store.lease import Lease


class Slugged(Protocol):
    @property
    def slug(self) -> str: ...


T = TypeVar("T", bound=Slugged)


def build_batch(
    store: Store,
    run_id: str,
    needs: list[T],
    limit: int,
    *,
    pid: int | None,
    lease_ttl_s: float,
    claim_ttl_s: float,
    wait_s: float = 0.0,
) -> tuple[list[T], list[str], str | None]:
    """Claim up to `limit` of `needs` under the batch-builder lease. Returns (batch, runs freed, holder
    taken over). With `wait_s` a live holder is waited for that long (it holds the lease only while it
    claims); without, a held lease fails at once. A read-only store only shows what would be claimed."""
    if store.read_only:
        taken = live_claims(store, read_queue(store)[0])
        return [i for i in needs if taken.get(i.slug, run_id) == run_id][:limit], [], None
    lease = Lease(store, layout.BATCH_LOCK, Holder.me(run_id), lease_ttl_s, "the batch builder")
    lease.acquire(wait_s)
    try:
        slugs, freed = claim(store, run_id, [item.slug for item in needs], limit, pid, claim_ttl_s)
    finally:
        lease.release()
    by_slug = {item.slug: item for item in needs}
    return [by_slug[slug] for slug in slugs if slug in by_slug], freed, lease.took_over


def run_lease(store: Store, run_id: str, ttl_s: float) -> Lease:
    """Take the run's own lease: a second process with the same run id fails at once instead of
    generating (and paying for) the same items again."""
    lease = Lease(store, layout.run_lock(run_id), Holder.me(run_id), ttl_s, f"run {run_id}")
    lease.acquire()
    return lease
