"""Scenario 6, money: batch mode's cost per item against sync, reruns over an unchanged and a 10%-changed
catalogue, and how much of its budget a run at concurrency 50 spends (each in a process of its own)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from bench.workloads import write_catalogue


def _settings(work: Path, url: str, catalogue: str, **extra: Any) -> Any:
    from content_pipeline.settings import load_settings

    return load_settings(
        store_url=str(work / "store"),
        catalogue=catalogue,
        openai_api_key="sk-bench",
        openai_base_url=url,
        daily_budget_usd=1_000_000,
        budget_usd=10_000,
        **extra,
    ).with_run_id()


def _go_live(settings: Any) -> Any:
    from content_pipeline.run.golive import go_live
    from content_pipeline.run.reporter import PlainReporter
    from content_pipeline.store import store_for

    logging.getLogger("content_pipeline").setLevel(logging.WARNING)
    report = go_live(settings, store_for(settings), PlainReporter())
    assert report.ok, report.failure
    return report


def _spend(settings: Any) -> float:
    from content_pipeline.ledger.scan import read_records
    from content_pipeline.store import store_for

    return sum(r.cost_usd for r in read_records(store_for(settings)) if r.run_id == settings.run_id)


def batch_vs_sync(work: Path, items: int) -> dict[str, Any]:
    """The same items generated with calls, and through the Batch API then collect: cost per item of each."""
    from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig
    from content_pipeline.run.commands import run_command
    from content_pipeline.run.reporter import PlainReporter
    from content_pipeline.store import store_for

    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    with FakeLLM(FakeLLMConfig(key="sk-bench")) as server:
        synced = _settings(work / "sync", server.url, catalogue, concurrency=50)
        sync_report = _go_live(synced)
        batched = _settings(work / "batch", server.url, catalogue, generation_mode="batch")
        _go_live(batched)
        collected = run_command("collect", batched, store_for(batched), PlainReporter())
        assert collected.ok, collected.message
    sync_usd, batch_usd = _spend(synced), _spend(batched)
    return {
        "items": items,
        "sync_successes": sync_report.stats.successes,
        "sync_usd_per_item": sync_usd / items,
        "batch_usd_per_item": batch_usd / items,
        "batch_vs_sync": batch_usd / sync_usd,
    }


def reruns(work: Path, items: int) -> dict[str, Any]:
    """A full run, a rerun over the same catalogue, and a rerun after 10% of the items changed a field."""
    from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig

    path = work / "catalogue.jsonl"
    write_catalogue(path, items)
    with FakeLLM(FakeLLMConfig(key="sk-bench")) as server:
        full = _settings(work, server.url, str(path), concurrency=50)
        _go_live(full)
        same = _settings(work, server.url, str(path), concurrency=50)
        same_report = _go_live(same)
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for n, row in enumerate(rows):
            if n % 10 == 3:
                row["title"] += " (2027 edition)"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        changed = _settings(work, server.url, str(path), concurrency=50)
        changed_report = _go_live(changed)
    full_usd, same_usd, changed_usd = _spend(full), _spend(same), _spend(changed)
    return {
        "items": items,
        "full_usd": full_usd,
        "unchanged_rerun_usd": same_usd,
        "unchanged_rerun_generated": same_report.stats.decided,
        "changed_items": changed_report.changed,
        "changed_rerun_generated": changed_report.stats.decided,
        "changed_rerun_vs_full": changed_usd / full_usd,
    }


def budget_use(work: Path, items: int, concurrency: int) -> dict[str, Any]:
    """A run whose budget covers 30% of its items (at what an item costs), at `concurrency` calls in flight
    with 20 ms answers: the share of the budget it spends."""
    from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig

    catalogue = write_catalogue(work / "catalogue.jsonl", items + 20)
    with FakeLLM(FakeLLMConfig(key="sk-bench", latency_ms=20)) as server:
        probe = _settings(work / "probe", server.url, catalogue, limit=20)
        per_item = _spend(probe) if _go_live(probe) else 0.0
        budget = round(0.3 * items * per_item / 20, 6)
        settings = _settings(
            work / "run", server.url, catalogue, limit=items, concurrency=concurrency, min_item_cost_usd=0
        ).model_copy(update={"budget_usd": budget})
        report = _go_live(settings)
    spent = _spend(settings)
    return {
        "items": items,
        "concurrency": concurrency,
        "budget_usd": budget,
        "spent_usd": spent,
        "share_of_budget": spent / budget,
        "generated": report.stats.decided,
    }


def flex_vs_auto(work: Path, items: int) -> dict[str, Any]:
    """The same items generated at the auto tier and at SERVICE_TIER=flex (the fake bills flex at the batch
    price, as OpenAI does): cost per item of each."""
    from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig

    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    with FakeLLM(FakeLLMConfig(key="sk-bench")) as server:
        auto = _settings(work / "auto", server.url, catalogue, concurrency=50)
        _go_live(auto)
        flex = _settings(work / "flex", server.url, catalogue, concurrency=50, service_tier="flex")
        _go_live(flex)
    auto_usd, flex_usd = _spend(auto), _spend(flex)
    return {
        "items": items,
        "auto_usd_per_item": auto_usd / items,
        "flex_usd_per_item": flex_usd / items,
        "flex_vs_auto": flex_usd / auto_usd,
    }


def cache_key_hits(work: Path, items: int, templates: int, machines: int) -> dict[str, Any]:
    """The share of calls whose prompt prefix was served from the provider's cache, with and without
    prompt_cache_key: `templates` active templates with a 1,024+ token fixed part, a provider spreading
    requests over `machines` machines that each cache one prefix (the fake: by the key when a request names
    one, else at random, as a provider's overflow routing does)."""
    from content_pipeline.ledger.scan import read_records
    from content_pipeline.rehearsal.long_prompts import activate_long_templates
    from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig
    from content_pipeline.store import store_for

    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    shares = {}
    for key in (True, False):
        settings = _settings(work / f"key-{key}", catalogue=catalogue, url="", prompt_cache_key=key)
        store = store_for(settings)
        activate_long_templates(store, templates)
        with FakeLLM(FakeLLMConfig(key="sk-bench", seed=7, cache_machines=machines, cache_slots=1)) as server:
            _go_live(settings.model_copy(update={"openai_base_url": server.url, "concurrency": 8}))
        records = read_records(store)
        shares[key] = sum(r.tokens_cached > 0 for r in records) / len(records)
    return {
        "items": items,
        "templates": templates,
        "machines": machines,
        "hit_share_key": shares[True],
        "hit_share_no_key": shares[False],
    }
