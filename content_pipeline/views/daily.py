"""Today's spend: from the usage view's day totals while the views are current, else from the ledger."""

from __future__ import annotations

from datetime import datetime

from content_pipeline.ledger.spend import day_start, spent_since
from content_pipeline.store import Store
from content_pipeline.views.snapshot import read_usage, views_current


def spent_today(store: Store, now: datetime | None = None) -> int:
    """Nano-dollars of the outcomes that finished today (UTC): the usage view's figure when the views
    were built from the ledger as it stands (no ledger read), else one streaming read of the ledger."""
    start = day_start(now)
    if views_current(store):
        days = read_usage(store).get("by_day")
        if isinstance(days, dict):  # (usage views written before they had day totals: read the ledger)
            return int(days.get(start.date().isoformat(), {}).get("cost_nano", 0))
    return spent_since(store, start)
