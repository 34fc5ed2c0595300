"""The figures of a period of outcomes: items attempted, success rate, rejects by reason, escalation rate,
tokens, cost and cost per success, by model and by prompt template version, and per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from content_pipeline.money import nano_expr, to_usd

PERIODS: dict[str, timedelta] = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "30d": timedelta(days=30)}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Figures:
    """One period's figures (money in nano-dollars)."""

    attempted: int
    successes: int
    rejects: int
    records: int
    escalated: int
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    cost_nano: int
    rejects_by_reason: dict[str, int]
    by_model: list[dict[str, Any]]
    by_template: list[dict[str, Any]]

    @property
    def success_rate(self) -> float | None:
        return _rate(self.successes, self.attempted)

    @property
    def escalation_rate(self) -> float | None:
        return _rate(self.escalated, self.records)

    @property
    def cost_per_success_usd(self) -> float | None:
        return to_usd(self.cost_nano) / self.successes if self.successes else None

    def headline(self) -> dict[str, float | int | None]:
        """The figures compared with the prior period, by name."""
        return {
            "items_attempted": self.attempted,
            "successes": self.successes,
            "rejects": self.rejects,
            "success_rate": self.success_rate,
            "escalation_rate": self.escalation_rate,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_cached": self.tokens_cached,
            "cost_usd": to_usd(self.cost_nano),
            "cost_per_success_usd": self.cost_per_success_usd,
        }


def last_outcomes(frame: pl.DataFrame) -> pl.DataFrame:
    """Each item's last outcome in `frame` (the one a period's success rate counts)."""
    return frame.sort("finished_at").group_by("slug", maintain_order=True).last()


def _by_model(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Calls, tokens and cost by the model that answered each call; successes by the model of the record."""
    calls = frame.select("calls").explode("calls").unnest("calls").drop_nulls("model")
    if calls.is_empty():
        return []
    per_call = calls.group_by("model").agg(
        calls=pl.len(),
        tokens_in=pl.col("tokens_in").sum(),
        tokens_out=pl.col("tokens_out").sum(),
        cost_nano=nano_expr("cost_usd").sum(),
    )
    wins = frame.filter(pl.col("status") == "success").group_by("model").agg(successes=pl.len())
    joined = per_call.join(wins, on="model", how="left").with_columns(pl.col("successes").fill_null(0))
    return joined.sort("model").to_dicts()


def _by_template(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Items, successes, success rate, cost and cost per success by prompt template id and version."""
    if frame.is_empty():
        return []
    cost = frame.group_by("prompt_template", "prompt_version").agg(cost_nano=nano_expr("cost_usd").sum())
    last = (
        last_outcomes(frame)
        .group_by("prompt_template", "prompt_version")
        .agg(items=pl.len(), successes=(pl.col("status") == "success").sum())
    )
    rows = last.join(cost, on=["prompt_template", "prompt_version"], how="full", coalesce=True).fill_null(0)
    out = []
    for row in rows.sort("prompt_template", "prompt_version").to_dicts():
        row["success_rate"] = _rate(row["successes"], row["items"])
        row["cost_per_success_usd"] = to_usd(row["cost_nano"]) / row["successes"] if row["successes"] else None
        out.append(row)
    return out


def figures(frame: pl.DataFrame) -> Figures:
    """The figures of the outcomes in `frame` (ops/outcomes.py's columns)."""
    last = last_outcomes(frame)
    reasons = (
        last.filter(pl.col("status") == "reject")
        .group_by("reason")
        .agg(n=pl.len())
        .sort("n", "reason", descending=[True, False])
    )
    return Figures(
        attempted=last.height,
        successes=int((last["status"] == "success").sum()),
        rejects=int((last["status"] == "reject").sum()),
        records=frame.height,
        escalated=int(frame["escalated"].fill_null(False).sum()),
        tokens_in=int(frame["tokens_in"].sum()),
        tokens_out=int(frame["tokens_out"].sum()),
        tokens_cached=int(frame["tokens_cached"].fill_null(0).sum()),
        cost_nano=int(frame.select(nano_expr("cost_usd").sum()).item() or 0),
        rejects_by_reason={str(r): int(n) for r, n in reasons.iter_rows()},
        by_model=_by_model(frame),
        by_template=_by_template(frame),
    )


def per_day(frame: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """day, successes, items, success_rate and cost_usd for every UTC day from `start` to `end` (days with
    no outcome as zeros), each item counted on the day of its last outcome."""
    days = pl.date_range(start.date(), (end - timedelta(microseconds=1)).date(), "1d", eager=True).alias("day")
    grid = pl.DataFrame({"day": days})
    if frame.is_empty():
        return grid.with_columns(
            successes=pl.lit(0), items=pl.lit(0), success_rate=pl.lit(None, pl.Float64), cost_usd=pl.lit(0.0)
        )
    day = pl.col("finished").dt.date().alias("day")
    items = last_outcomes(frame).group_by(day).agg(items=pl.len(), successes=(pl.col("status") == "success").sum())
    cost = frame.group_by(day).agg(cost_nano=nano_expr("cost_usd").sum())
    out = grid.join(items, on="day", how="left").join(cost, on="day", how="left").fill_null(0)
    return out.with_columns(
        success_rate=pl.when(pl.col("items") > 0).then(pl.col("successes") / pl.col("items")),
        cost_usd=pl.col("cost_nano") / 1e9,
    ).drop("cost_nano")
