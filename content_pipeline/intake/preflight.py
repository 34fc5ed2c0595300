"""Preflight: drop invalid, done and not-queued batch items with a warning, rewrite the batch, guard the budget."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from content_pipeline.claims.pending import pending_slugs
from content_pipeline.claims.queue import read_queue
from content_pipeline.configs import PricingConfig
from content_pipeline.errors import BadInputError, BudgetRefusedError
from content_pipeline.intake.catalogue import Item, RowError, validate_row
from content_pipeline.intake.items import write_items
from content_pipeline.money import PriceTable, to_usd, usd
from content_pipeline.store import Store, layout
from content_pipeline.views.checkpoint import decided
from content_pipeline.views.consolidate import current_checkpoint
from content_pipeline.views.daily import spent_today


@dataclass
class Preflight:
    items: list[Item]
    dropped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)


def check_budget(settings: PricingConfig, batch_size: int, worst_nano: int) -> None:
    """Refuse before any spend when the budget cannot cover the batch: MIN_ITEM_COST_USD per item when it is
    set, else the batch's worst case (`worst_nano`: every item's call to MODEL and escalation to STRONG_MODEL)."""
    if settings.min_item_cost_usd is not None:
        need, basis = batch_size * settings.min_item_cost_usd, f"at {usd(settings.min_item_cost_usd)}/item"
    else:
        need = to_usd(worst_nano)
        each = usd(need / batch_size) if batch_size else usd(0)
        basis = (
            f"the batch's worst case, {each}/item: each prompt plus MAX_OUTPUT_TOKENS {settings.max_output_tokens} "
            f"on {settings.model}, plus an escalation on {settings.strong_model}"
        )
    if settings.budget_usd < need:
        raise BudgetRefusedError(
            f"budget too low for batch size: batch size {batch_size} items, budget {usd(settings.budget_usd)}, "
            f"minimum needed {usd(need)} ({basis})"
        )


def check_daily_budget(settings: PricingConfig, spent_today_nano: int) -> None:
    """Refuse a run whose budget, on top of what today (UTC) has spent, could take the day over
    DAILY_BUDGET_USD."""
    today = to_usd(spent_today_nano)
    if today + settings.budget_usd > settings.daily_budget_usd:
        raise BudgetRefusedError(
            f"daily budget: today's spend {usd(today)} plus this run's budget {usd(settings.budget_usd)} could "
            f"take the day over DAILY_BUDGET_USD {usd(settings.daily_budget_usd)}: lower --budget-usd to "
            f"{usd(max(settings.daily_budget_usd - today, 0))} or wait for tomorrow (UTC)"
        )


def _read_batch(store: Store, run_id: str, result: Preflight) -> list[Item]:
    """The items of the run's batch file; a line that is not a valid item is dropped with a warning."""
    key = layout.run_key(run_id, layout.BATCH)
    data = store.get(key)
    if data is None:
        raise BadInputError(f"run {run_id} has no batch ({key}): run `content-pipeline batch --run-id {run_id}` first")
    items = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(validate_row(row if isinstance(row, dict) else {}))
        except (json.JSONDecodeError, RowError) as exc:
            result.dropped["invalid"] += 1
            result.warnings.append(f"{key} line {number}: invalid item dropped ({exc})")
    return items


def preflight(
    store: Store,
    settings: PricingConfig,
    run_id: str,
    worst_case: Callable[[list[Item]], int],
    planned: list[Item] | None = None,
    retry: Collection[str] = (),
    changed: Callable[[list[Item]], Collection[str]] | None = None,
) -> Preflight:
    """Filter the run's batch file, or the `planned` batch (go-live's, just claimed and validated): drop
    invalid, duplicate, done and not-queued items, rewrite the batch when any was dropped, and guard the
    budget (`worst_case`: the most the items can cost, in nano-dollars). Rejects among `retry` (a replay's)
    and the items `changed` names (done, but changed since their success) are not dropped as decided. Never
    crashes on a bad row."""
    PriceTable(settings.price_table).check(settings.model, settings.strong_model)
    key = layout.run_key(run_id, layout.BATCH)
    result = Preflight(items=[])
    candidates = _read_batch(store, run_id, result) if planned is None else planned
    again = set(retry) | set(changed(candidates) if changed else ())
    final = decided(current_checkpoint(store), again)
    pending = pending_slugs(store)
    queue, _ = read_queue(store)
    mine = set(queue.get("runs", {}).get(run_id, {}).get("slugs", []))
    seen: set[str] = set()
    for item in candidates:
        if item.slug in seen:
            result.dropped["duplicate"] += 1
            continue
        seen.add(item.slug)
        if item.slug in final:
            result.dropped["done"] += 1
        elif item.slug in pending:
            result.dropped["pending_batch"] += 1
        elif item.slug not in mine and not store.read_only:
            result.dropped["not_queued"] += 1
        else:
            result.items.append(item)
    for reason, count in sorted(result.dropped.items()):
        result.warnings.append(f"preflight dropped {count} {reason} item(s) from the batch")
    if result.dropped and not store.read_only:
        write_items(store, key, result.items)
    computed = settings.min_item_cost_usd is None  # the worst case only when it is the guard
    check_budget(settings, len(result.items), worst_case(result.items) if computed else 0)
    if result.items:
        check_daily_budget(settings, spent_today(store))
    return result
