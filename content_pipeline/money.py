"""Money: integer nano-dollars (the one conversion from and to USD, for sums without float drift) and prices."""

from __future__ import annotations

import math

import polars as pl

from content_pipeline.errors import BadInputError
from content_pipeline.prices import ModelPrice

NANO = 1_000_000_000  # nano-dollars per USD


def to_nano(usd: float) -> int:
    return round(usd * NANO)


def to_usd(nano: int) -> float:
    return nano / NANO


def nano_expr(column: str | pl.Expr) -> pl.Expr:
    """`to_nano` of every value of a USD column, as a polars expression (each value rounded, then summed)."""
    expr = pl.col(column) if isinstance(column, str) else column
    return (expr * NANO).round().cast(pl.Int64)


def usd(value: float) -> str:
    """Money for a message: cents from a dollar up; below, four decimals, or as many as it takes to show two
    significant digits (down to the nano-dollar): a $0.002 budget is not "$0.00", $0.00003 not "$0.0000"."""
    if abs(value) >= 1 or value == 0:
        return f"${value:.2f}"
    decimals = min(9, max(4, 1 - math.floor(math.log10(abs(value)))))
    return f"${value:.{decimals}f}"


class PriceTable:
    """USD per token by model; an unknown model is refused before any spend."""

    def __init__(self, prices: dict[str, ModelPrice]) -> None:
        self.prices = prices

    def check(self, *models: str) -> None:
        for model in models:
            if model not in self.prices:
                known = ", ".join(sorted(self.prices))
                raise BadInputError(f"model {model!r} has no price in PRICE_TABLE (priced: {known})")

    def cost_nano(
        self, model: str, tokens_in: int, tokens_out: int, cached: int = 0, batch: bool = False, written: int = 0
    ) -> int:
        """What a call costs: its prompt tokens (`cached` of them at the cached price, `written` to the cache at
        the cache-write price), its output tokens, and, through the Batch API or the flex tier, the model's
        batch discount of that."""
        price = self.prices[model]
        cached = min(max(cached, 0), tokens_in)
        written = min(max(written, 0), tokens_in - cached)
        usd_mtok = (
            (tokens_in - cached - written) * price.input_per_mtok
            + cached * price.cached_per_mtok
            + written * price.write_per_mtok
            + tokens_out * price.output_per_mtok
        )
        return round(usd_mtok * (price.batch_discount if batch else 1.0) * NANO / 1_000_000)
