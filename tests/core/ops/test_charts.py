"""The reports' charts without a server: per-day series as bars when there are few days, one legend where two
series share a chart, labelled axes, day labels that never overlap, "no rejects" on an empty rejects chart,
small palette PNGs, and report markdown that embeds each chart as an image."""

from __future__ import annotations

import base64
import itertools
import re
import struct
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from content_pipeline.ops import charts
from content_pipeline.ops.reports import CHARTS, build_report, write_report
from content_pipeline.store import open_store
from tests.support.helpers import LEDGER, NOW, write_ledger

IMAGE = re.compile(r"!\[([a-z-]+) chart\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def days(items: list[int], successes: list[int] | None = None) -> pl.DataFrame:
    """A per-day frame as kpis.per_day makes it, from 2026-11-01: items and successes per day (a day of no
    items has no rate), costing $0.0001 an item."""
    successes = successes if successes is not None else [n * 3 // 4 for n in items]
    return pl.DataFrame(
        {
            "day": [date(2026, 11, 1) + timedelta(days=i) for i in range(len(items))],
            "successes": successes,
            "items": items,
            "success_rate": [s / n if n else None for s, n in zip(successes, items, strict=True)],
            "cost_usd": [n * 0.0001 for n in items],
        }
    )


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_a_success_rate_over_one_day_is_a_labelled_bar_not_a_line() -> None:
    [ax] = charts.success_rate_figure(days([4], [3]), "one day").axes
    assert len(ax.lines) == 0 and len(ax.patches) == 1
    assert ax.patches[0].get_height() == pytest.approx(75)
    assert "75% of 4" in texts(ax)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("day (UTC)", "success rate, %")


def test_a_daily_report_s_three_days_with_outcomes_on_one_draw_one_bar_on_that_day() -> None:
    [ax] = charts.success_rate_figure(days([0, 0, 20], [0, 0, 20]), "daily").axes
    assert len(ax.lines) == 0 and len(ax.patches) == 1
    assert ax.patches[0].get_x() + ax.patches[0].get_width() / 2 == pytest.approx(2)  # the third day
    assert [t.get_text() for t in ax.get_xticklabels()] == ["11-01", "11-02", "11-03"]


def test_a_success_rate_over_many_days_is_a_line_with_gaps() -> None:
    items = [0 if i in (3, 4) else 10 for i in range(61)]
    [ax] = charts.success_rate_figure(days(items), "30 days").axes
    assert len(ax.patches) == 0 and len(ax.lines) == 1
    assert sum(y != y for y in ax.lines[0].get_ydata()) == 2  # NaN: no point on a day without outcomes


def test_cost_and_successes_over_few_days_are_bars_side_by_side_with_one_legend() -> None:
    fig = charts.cost_and_successes_figure(days([0, 8, 20]), "few days")
    cost, successes = fig.axes
    assert len(cost.patches) == 3 and len(successes.patches) == 3 and len(successes.lines) == 0
    assert legend_texts(fig) == ["cost (USD, left axis)", "successes (right axis)"]
    assert (cost.get_xlabel(), cost.get_ylabel(), successes.get_ylabel()) == (
        "day (UTC)",
        "cost per day, USD",
        "successes per day",
    )


def test_cost_and_successes_over_many_days_draw_the_successes_as_a_line() -> None:
    fig = charts.cost_and_successes_figure(days([10] * 61), "many days")
    cost, successes = fig.axes
    assert len(cost.patches) == 61 and len(successes.patches) == 0 and len(successes.lines) == 1
    assert len(legend_texts(fig)) == 2


@pytest.mark.parametrize("n", [1, 3, 15, 31, 61])
def test_day_labels_never_overlap(n: int) -> None:
    fig = charts.cost_and_successes_figure(days([10] * n), f"{n} days")
    renderer = FigureCanvasAgg(fig).get_renderer()
    labels = [t for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert 1 <= len(labels) <= charts.MAX_TICKS
    boxes = [t.get_window_extent(renderer) for t in labels]
    for left, right in itertools.pairwise(boxes):
        assert left.x1 < right.x0, f"{n} days: overlapping day labels"


def test_an_empty_rejects_chart_says_no_rejects() -> None:
    [ax] = charts.rejects_by_reason_figure({}, {}, "Rejects by reason").axes
    assert "no rejects" in texts(ax)
    assert len(ax.patches) == 0 and ax.get_legend() is None


def test_rejects_by_reason_this_period_beside_the_prior_with_a_legend() -> None:
    fig = charts.rejects_by_reason_figure({"refusal": 1, "length": 3}, {"length": 2}, "Rejects by reason")
    [ax] = fig.axes
    assert "no rejects" not in texts(ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["length", "refusal"]  # the most frequent first
    assert legend_texts(fig) == ["this period", "prior period"] and ax.get_xlabel() == "rejects"
    assert sorted(p.get_width() for p in ax.patches) == [0, 1, 2, 3]


def test_no_outcomes_at_all_is_said_rather_than_drawn_empty() -> None:
    for fig in (charts.success_rate_figure(days([0, 0]), "t"), charts.cost_and_successes_figure(days([0, 0]), "t")):
        assert "no outcomes in these days" in texts(fig.axes[0])


def test_the_pngs_are_small_palette_images_of_the_fixed_size() -> None:
    many = days([10 + i % 7 for i in range(61)])
    for data in (charts.cost_and_successes(many, "t"), charts.success_rate(many, "t")):
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (charts.WIDTH_PX, charts.HEIGHT_PX)
        assert data[25] == 3  # colour type 3: a palette
        assert len(data) < 60_000


def test_the_report_s_markdown_embeds_each_chart_and_the_stored_one_names_them(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    write_ledger(store, LEDGER)
    report = build_report(store, "kpi", "daily", NOW)
    files = write_report(store, report)
    embedded = report.markdown(store.url, embed=True)
    images = IMAGE.findall(embedded)
    assert [name for name, _ in images] == list(CHARTS)
    for name, data in images:
        assert base64.b64decode(data) == store.get(files[name])
        assert f"- {name}: `{store.url}/{files[name]}`" in embedded
    stored = store.get(files["markdown"]).decode()
    assert "data:image" not in stored and f"- success-rate: `{store.url}/{files['success-rate']}`" in stored
    assert len(embedded) < 100_000
