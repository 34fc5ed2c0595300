"""What the ledger's outcomes cost since a moment: today's spend, held against DAILY_BUDGET_USD."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from content_pipeline.ledger.scan import stream_ledger
from content_pipeline.money import nano_expr
from content_pipeline.store import Store


def day_start(now: datetime | None = None) -> datetime:
    """Midnight UTC of the day of `now` (of today when None)."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def stamp(moment: datetime) -> str:
    """A moment as the ledger writes `finished_at` (ISO 8601, UTC, milliseconds), so stamps compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def spent_since(store: Store, since: datetime) -> int:
    """Nano-dollars of the outcomes that finished at or after `since` (one streaming read of the ledger,
    with the columns the views decode, so the consolidation after it reads them from the cache). A record
    written twice under its id (a process that lost its lease) is counted once."""
    start = stamp(since)
    frames: list[pl.DataFrame] = []

    def add(frame: pl.DataFrame) -> None:
        recent = frame.filter(pl.col("finished_at") >= start).select("id", "finished_at", cost=nano_expr("cost_usd"))
        if recent.height:
            frames.append(recent)

    stream_ledger(store, add)
    if not frames:
        return 0
    once = pl.concat(frames).sort("finished_at").unique("id", keep="first", maintain_order=True)
    return int(once["cost"].sum() or 0)
