"""Drive the core stages without Prefect, as go-live chains them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from content_pipeline.batch import build_batch, release
from content_pipeline.fake_llm import FakeLLM, FakeLLMConfig
from content_pipeline.generate import GenerationContext, open_generation, plan_chunks, run_chunk
from content_pipeline.inventory import take_inventory
from content_pipeline.preflight import preflight
from content_pipeline.settings import Settings
from content_pipeline.store import Store, open_store
from content_pipeline.views import consolidate, sync_checkpoint


def run_core(settings: Settings, store: Store | None = None) -> GenerationContext:
    """inventory, batch, preflight, generate, release, consolidate, sync; returns the generation context."""
    store = store or open_store(settings.store_url, read_only=settings.evidence_only)
    run = settings.run_id
    inv = take_inventory(store, settings.catalogue, settings.scope, run)
    batch, _, _ = build_batch(store, run, inv.needs, settings.limit, pid=os.getpid(), lease_ttl_s=30, claim_ttl_s=600)
    checked = preflight(store, settings, run, batch if store.read_only else None)
    chunks, parallel, per_chunk = plan_chunks(checked.items, settings)
    ctx = open_generation(store, settings, run, parallel)
    for chunk in chunks:
        run_chunk(ctx, chunk, per_chunk)
    if ctx.ledger is not None:
        ctx.ledger.close()
    if not store.read_only:
        release(store, run)
        consolidate(store)
        sync_checkpoint(store)
    return ctx


@contextmanager
def fake_llm(key: str = "sk-k", *faults: str, **config: Any) -> Iterator[FakeLLM]:
    """The project's fake provider on loopback, recording every request, with `faults` from the start."""
    with FakeLLM(FakeLLMConfig(key=key, record=True, seed=7, **config)) as server:
        server.set_faults(list(faults))
        yield server
