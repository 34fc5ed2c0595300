"""The reports' PNG charts, drawn with matplotlib's Agg renderer (no display, no pyplot state)."""

from __future__ import annotations

import base64
import io
import math
import threading
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

WIDTH_PX, HEIGHT_PX, DPI = 900, 450, 100  # every chart's size in pixels
BARS_UP_TO_DAYS = 31  # a per-day series of at most this many days is drawn as bars, a longer one as a line
MAX_TICKS = 15  # at most this many day labels on an axis: they never overlap at WIDTH_PX
COST, SUCCESSES, RATE, PRIOR, THIS, MUTED = "#4c78a8", "#f58518", "#54a24b", "#bab0ac", "#e45756", "#6b6b6b"
VISITORS, CLICKS = "#72b7b2", "#b279a2"
_LOCK = threading.Lock()  # matplotlib's text and font caches are not thread-safe: one chart at a time


def figure(draw: Callable[[Axes], None]) -> Figure:
    """A WIDTH_PX x HEIGHT_PX figure of one Axes that `draw` fills, laid out."""
    from matplotlib.figure import Figure

    with _LOCK:
        fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        draw(fig.add_subplot())
        fig.tight_layout()
        return fig


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, exactly WIDTH_PX x HEIGHT_PX, in a 256-colour palette: about a third of the
    bytes of matplotlib's RGBA PNG and no visible difference (the charts travel inline in markdown)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    with _LOCK:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def data_uri(data: bytes) -> str:
    """A PNG as a `data:` URI, for a markdown image that needs no file beside it."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _day_axis(ax: Axes, days: pl.DataFrame) -> list[int]:
    """Day positions 0..n-1 on the x axis, labelled MM-DD, thinned to at most MAX_TICKS labels."""
    labels = [d.strftime("%m-%d") for d in days["day"]]
    step = max(1, math.ceil(len(labels) / MAX_TICKS))
    ax.set_xticks(range(0, len(labels), step), labels[::step])
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_xlabel("day (UTC)")
    return list(range(len(labels)))


def _note(ax: Axes, text: str) -> None:
    """A message in the middle of an Axes that has nothing to show, and no ticks."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=16, color=MUTED)
    ax.set_xticks([])
    ax.set_yticks([])


def _integer_axis(ax: Axes, axis: str = "y") -> None:
    from matplotlib.ticker import MaxNLocator

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(integer=True))


def draw_cost_and_successes(ax: Axes, days: pl.DataFrame, title: str) -> None:
    """Bars of cost per day (USD, left axis) beside successes per day (right axis): bars for both when there
    are few days, the successes as a line over the cost bars when there are many; one legend for both."""
    from matplotlib.ticker import StrMethodFormatter

    ax.set_title(title)
    if days.is_empty() or days["items"].sum() == 0:
        _note(ax, "no outcomes in these days")
        return
    x = _day_axis(ax, days)
    cost, successes = days["cost_usd"].to_list(), days["successes"].to_list()
    right = ax.twinx()
    if len(x) <= BARS_UP_TO_DAYS:
        ax.bar([i - 0.2 for i in x], cost, width=0.4, color=COST, label="cost (USD, left axis)")
        right.bar([i + 0.2 for i in x], successes, width=0.4, color=SUCCESSES, label="successes (right axis)")
    else:
        ax.bar(x, cost, width=0.8, color=COST, label="cost (USD, left axis)")
        right.plot(x, successes, color=SUCCESSES, marker="o", markersize=3, label="successes (right axis)")
    ax.set_ylabel("cost per day, USD")
    ax.yaxis.set_major_formatter(StrMethodFormatter("${x:,.4f}"))
    right.set_ylabel("successes per day")
    _integer_axis(right)
    ax.set_ylim(0, 1.25 * max(max(cost), 1e-9))  # headroom for the legend
    right.set_ylim(0, 1.25 * max(max(successes), 1))
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    right.legend(handles=handles, loc="upper left", ncol=2)  # on the twin: it is drawn over the cost axes


def draw_success_rate(ax: Axes, days: pl.DataFrame, title: str) -> None:
    """The share of items whose last outcome of the day was a success, per day: a labelled bar a day when
    there are few days, a line with gaps when there are many; no bar (and no point) on a day with none."""
    ax.set_title(title)
    rates = [None if r is None else 100 * r for r in days["success_rate"].to_list()] if not days.is_empty() else []
    if all(r is None for r in rates):
        _note(ax, "no outcomes in these days")
        return
    x = _day_axis(ax, days)
    if len(x) <= BARS_UP_TO_DAYS:
        shown = [(i, r, n) for i, r, n in zip(x, rates, days["items"].to_list(), strict=True) if r is not None]
        bars = ax.bar([i for i, _, _ in shown], [r for _, r, _ in shown], width=0.6, color=RATE, label="success rate")
        level = len(x) <= MAX_TICKS  # room for level labels above the bars; turned vertical for more days
        labels = [f"{r:.0f}%" + (f" of {n}" if len(x) <= 7 else "") for _, r, n in shown]
        ax.bar_label(bars, labels, padding=2, fontsize=9 if level else 7, rotation=0 if level else 90)
    else:
        ax.plot(x, [math.nan if r is None else r for r in rates], color=RATE, marker="o", markersize=3)
    ax.set_ylim(0, 115)  # headroom for the bars' labels
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("success rate, %")


def draw_rejects_by_reason(ax: Axes, current: dict[str, int], prior: dict[str, int], title: str) -> None:
    """Rejects by reason, this period's bar beside the prior one's, the most frequent reason on top; "no
    rejects" when neither period has any."""
    ax.set_title(title)
    reasons = sorted(set(current) | set(prior), key=lambda r: (-current.get(r, 0), -prior.get(r, 0), r))
    if not reasons:
        _note(ax, "no rejects")
        return
    y = list(range(len(reasons)))
    before = ax.barh([i + 0.2 for i in y], [prior.get(r, 0) for r in reasons], height=0.4, color=PRIOR)
    now = ax.barh([i - 0.2 for i in y], [current.get(r, 0) for r in reasons], height=0.4, color=THIS)
    before.set_label("prior period")
    now.set_label("this period")
    for bars in (now, before):
        ax.bar_label(bars, [f"{v:g}" if v else "" for v in bars.datavalues], padding=2, fontsize=8)
    ax.set_yticks(y, reasons)
    ax.invert_yaxis()  # the most frequent reason first
    ax.set_xlim(0, 1.15 * max(*current.values(), *prior.values(), 1))
    _integer_axis(ax, "x")
    ax.set_xlabel("rejects")
    ax.legend(handles=[now, before], loc="lower right")


def _period_start(ax: Axes, days: pl.DataFrame, start: date | None) -> list[Line2D]:
    """A dashed line before `start`'s day, where this period begins (none when it is not in `days`)."""
    found = days["day"].to_list()
    if start is None or start not in found or found[0] == start:
        return []
    return [ax.axvline(found.index(start) - 0.5, color=MUTED, linestyle="--", label="this period starts")]


def draw_audience(ax: Axes, days: pl.DataFrame, title: str, start: date | None = None) -> None:
    """Visitors per day (left axis) beside clicks per day (right axis): bars for both when there are few days,
    the clicks as a line over the visitors' bars when there are many; a count no source reports is named in
    the legend rather than drawn; a dashed line where this period starts; one legend for all."""
    ax.set_title(title)
    reported = [m for m in ("visitors", "clicks") if m in days.columns and days[m].is_not_null().any()]
    if days.is_empty() or sum(days[m].fill_null(0).sum() for m in reported) == 0:
        _note(ax, "no engagement figures in these days")
        return
    x, right, many = _day_axis(ax, days), ax.twinx(), days.height > BARS_UP_TO_DAYS
    for axes, name, colour, shift in ((ax, "visitors", VISITORS, -0.2), (right, "clicks", CLICKS, 0.2)):
        label = f"{name} ({'left' if axes is ax else 'right'} axis)"
        if name not in reported:
            axes.plot([], [], color=colour, label=f"{name}: no source reports them")
            axes.set_yticks([])
            continue
        values = days[name].fill_null(0).to_list()
        if many and axes is right:
            axes.plot(x, values, color=colour, marker="o", markersize=3, label=label)
        else:
            axes.bar(
                [i + (0 if many else shift) for i in x], values, width=0.8 if many else 0.4, color=colour, label=label
            )
        axes.set_ylim(0, 1.25 * max(max(values), 1))  # headroom for the legend
        axes.set_ylabel(f"{name} per day")
        _integer_axis(axes)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    handles += _period_start(right, days, start)
    right.legend(handles=handles, loc="upper left", ncol=2)  # on the twin: it is drawn over the visitors' axes


def cost_and_successes_figure(days: pl.DataFrame, title: str) -> Figure:
    return figure(lambda ax: draw_cost_and_successes(ax, days, title))


def success_rate_figure(days: pl.DataFrame, title: str) -> Figure:
    return figure(lambda ax: draw_success_rate(ax, days, title))


def rejects_by_reason_figure(current: dict[str, int], prior: dict[str, int], title: str) -> Figure:
    return figure(lambda ax: draw_rejects_by_reason(ax, current, prior, title))


def audience_figure(days: pl.DataFrame, title: str, start: date | None = None) -> Figure:
    return figure(lambda ax: draw_audience(ax, days, title, start))


def cost_and_successes(days: pl.DataFrame, title: str) -> bytes:
    """Cost and successes per day as a PNG."""
    return png(cost_and_successes_figure(days, title))


def success_rate(days: pl.DataFrame, title: str) -> bytes:
    """The success rate per day as a PNG."""
    return png(success_rate_figure(days, title))


def rejects_by_reason(current: dict[str, int], prior: dict[str, int], title: str) -> bytes:
    """Rejects by reason, this period beside the prior one, as a PNG."""
    return png(rejects_by_reason_figure(current, prior, title))


def audience(days: pl.DataFrame, title: str, start: date | None = None) -> bytes:
    """Visitors and clicks per day over both periods as a PNG."""
    return png(audience_figure(days, title, start))
