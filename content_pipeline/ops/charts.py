"""The reports' PNG charts, drawn with matplotlib's Agg backend (no display): cost and successes per day,
success rate per day, rejects by reason."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WIDTH_PX, HEIGHT_PX, DPI = 900, 450, 100  # every chart's size in pixels
_LOCK = threading.Lock()  # pyplot's state is global: one chart at a time


def _png(draw: Callable[[Axes], None]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    with _LOCK:
        fig, ax = plt.subplots(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        try:
            draw(ax)
            fig.tight_layout()
            out = io.BytesIO()
            fig.savefig(out, format="png", dpi=DPI)  # no bbox_inches: the size stays WIDTH_PX x HEIGHT_PX
            return out.getvalue()
        finally:
            plt.close(fig)


def cost_and_successes(days: pl.DataFrame, title: str) -> bytes:
    """Bars of cost per day (USD, left axis) and a line of successes per day (right axis)."""
    labels = [d.strftime("%m-%d") for d in days["day"]]

    def draw(ax: Axes) -> None:
        ax.bar(labels, days["cost_usd"].to_list(), color="#4c78a8", label="cost (USD)")
        ax.set_ylabel("cost per day, USD")
        ax.set_title(title)
        right = ax.twinx()
        right.plot(labels, days["successes"].to_list(), color="#f58518", marker="o", label="successes")
        right.set_ylabel("successes per day")
        right.set_ylim(bottom=0)
        ax.tick_params(axis="x", labelrotation=45)

    return _png(draw)


def success_rate(days: pl.DataFrame, title: str) -> bytes:
    """The share of items whose last outcome of the day was a success, per day (gaps where none)."""
    labels = [d.strftime("%m-%d") for d in days["day"]]
    rates = [None if r is None else 100 * r for r in days["success_rate"].to_list()]

    def draw(ax: Axes) -> None:
        ax.plot(labels, [float("nan") if r is None else r for r in rates], color="#54a24b", marker="o")
        ax.set_ylim(0, 100)
        ax.set_ylabel("success rate, %")
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=45)

    return _png(draw)


def rejects_by_reason(current: dict[str, int], prior: dict[str, int], title: str) -> bytes:
    """Rejects by reason, this period beside the prior one."""
    reasons = sorted(set(current) | set(prior), key=lambda r: (-current.get(r, 0), r)) or ["(none)"]
    x = list(range(len(reasons)))

    def draw(ax: Axes) -> None:
        ax.bar([i - 0.2 for i in x], [prior.get(r, 0) for r in reasons], width=0.4, color="#bab0ac", label="prior")
        ax.bar([i + 0.2 for i in x], [current.get(r, 0) for r in reasons], width=0.4, color="#e45756", label="this")
        ax.set_xticks(x, reasons, rotation=30)
        ax.set_ylabel("rejects")
        ax.set_title(title)
        ax.legend()

    return _png(draw)
