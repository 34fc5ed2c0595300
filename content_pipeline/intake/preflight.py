"""Preflight: drop invalid, done and not-queued batch items with a warning, rewrite the batch, guard the budget."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from content_pipeline.claims.queue import read_queue
from content_pipeline.errors import BadInputError, BudgetRefusedError
from content_pipeline.intake.catalogue import Item, RowError, validate_row
from content_pipeline.intake.items import items_jsonl, write_items
from content_pipeline.money import PriceTable
from content_pipeline.settings import Settings
from content_pipeline.store import Store, layout
from content_pipeline.views.checkpoint import decided
from content_pipeline.views.consolidate import current_checkpoint


@dataclass
class Preflight:
    items: list[Item]
    dropped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)


def check_budget(settings: Settings, batch_size: int) -> None:
    """Refuse before any spend when the budget cannot cover the batch at the minimum cost per item."""
    need = batch_size * settings.min_item_cost_usd
    if settings.budget_usd < need:
        raise BudgetRefusedError(
            f"budget too low for batch size: batch size {batch_size} items, budget ${settings.budget_usd:.2f}, "
            f"minimum needed ${need:.2f} (at ${settings.min_item_cost_usd:.2f}/item)"
        )


def preflight(store: Store, settings: Settings, run_id: str, planned: list[Item] | None = None) -> Preflight:
    """Filter the run's batch file (or, read-only, the `planned` batch); never crash on a bad row."""
    PriceTable(settings.price_table).check(settings.model, settings.strong_model)
    key = layout.run_key(run_id, layout.BATCH)
    data = store.get(key) if planned is None else items_jsonl(planned)
    if data is None:
        raise BadInputError(f"run {run_id} has no batch ({key}): run `content-pipeline batch --run-id {run_id}` first")
    final = decided(current_checkpoint(store))
    queue, _ = read_queue(store)
    mine = set(queue.get("runs", {}).get(run_id, {}).get("slugs", []))
    result = Preflight(items=[])
    seen: set[str] = set()
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = validate_row(row if isinstance(row, dict) else {})
        except (json.JSONDecodeError, RowError) as exc:
            result.dropped["invalid"] += 1
            result.warnings.append(f"{key} line {number}: invalid item dropped ({exc})")
            continue
        if item.slug in seen:
            result.dropped["duplicate"] += 1
            continue
        seen.add(item.slug)
        if item.slug in final:
            result.dropped["done"] += 1
        elif item.slug not in mine and not store.read_only:
            result.dropped["not_queued"] += 1
        else:
            result.items.append(item)
    for reason, count in sorted(result.dropped.items()):
        result.warnings.append(f"preflight dropped {count} {reason} item(s) from the batch")
    if result.dropped and not store.read_only:
        write_items(store, key, result.items)
    check_budget(settings, len(result.items))
    return result
