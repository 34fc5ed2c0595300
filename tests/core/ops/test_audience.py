"""The KPI report's audience against a store whose true engagement the test knows: reach, pageviews, clicks,
impressions, CTR and time on page of a daily period against the prior one, by template version, category and
publishing slot; a metric two sources report counted once; days outside both periods left out; the audience
chart stored as a PNG; and a store with no engagement yet told so, with nothing breaking."""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.log import append_days
from content_pipeline.engagement.segments import template_keys
from content_pipeline.engagement.views import first_source, post_days
from content_pipeline.ops import charts
from content_pipeline.ops.reports import AUDIENCE_CHART, CHARTS, NO_ENGAGEMENT, build_report, terminal, write_report
from content_pipeline.publish import log as attempt_log
from content_pipeline.publish.log import AttemptLog
from content_pipeline.settings import Settings
from content_pipeline.store import Store, open_store
from tests.conftest import make_item
from tests.support.helpers import NOW, run

# NOW is 2026-11-20 12:00 UTC: a daily report's period covers the day 11-19, the prior period 11-18
PRIOR, THIS, TODAY, BEFORE = "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-17"
PUBLISHED = {"item-0001": "07:00", "item-0002": "07:30", "item-0003": "19:00", "item-0010": "13:00"}  # UTC, 11-10
IMAGE = re.compile(r"!\[([a-z-]+) chart\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


@pytest.fixture
def backend() -> str:
    """A local folder only: these tests need no S3 server."""
    return "file"


def day(source: str, slug: str, on: str, final: bool = True, **metrics: float) -> PostDay:
    return PostDay(source=source, slug=slug, day=date.fromisoformat(on), metrics=metrics, final=final)


def publish(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attempt log of posts first put live on 2026-11-10 at PUBLISHED's times (their slots), each intent's
    payload naming the item's category as publish sends it (item-0010 left the catalogue: no category)."""
    with AttemptLog(store, "publish-run") as log:
        for n, (slug, at) in enumerate(PUBLISHED.items()):
            monkeypatch.setattr(attempt_log, "now", lambda at=at: f"2026-11-10T{at}:00.000+00:00")
            categories = [make_item(int(slug[-4:]))["category"]] if slug != "item-0010" else []
            payload = {"slug": slug, "title": slug, "categories": categories, "tags": []}
            log.write("intent", target="wordpress", slug=slug, key=f"k{n}", content_hash="h", payload=payload)
            link = f"https://shop.example/{slug}/"
            fields = {"key": f"k{n}", "content_hash": "h", "post_id": str(100 + n), "link": link}
            log.write("outcome", target="wordpress", slug=slug, live=True, result="created", **fields)


def engagement(store: Store) -> None:
    """Plausible's visitors, pageviews and time on page; Search Console's clicks and impressions; and
    wp-stats, which also reports visitors (after plausible by name: its figure counts only where plausible
    has none). Days outside both periods carry figures that must not count."""
    append_days(
        store,
        "plausible",
        [
            day("plausible", "item-0001", PRIOR, visitors=10, pageviews=15, time_on_page=30),
            day("plausible", "item-0002", PRIOR, visitors=20, pageviews=25, time_on_page=60),
            day("plausible", "item-0001", THIS, False, visitors=30, pageviews=40, time_on_page=40),
            day("plausible", "item-0002", THIS, visitors=10, pageviews=12, time_on_page=80),
            day("plausible", "item-0010", THIS, visitors=7, pageviews=7),
            day("plausible", "item-0001", TODAY, False, visitors=1000, pageviews=1000),
            day("plausible", "item-0001", BEFORE, visitors=500, pageviews=500),
        ],
    )
    append_days(
        store,
        "search-console",
        [
            day("search-console", "item-0001", PRIOR, clicks=2, impressions=100),
            day("search-console", "item-0002", PRIOR, clicks=3, impressions=100),
            day("search-console", "item-0001", THIS, clicks=6, impressions=200),
            day("search-console", "item-0003", THIS, False, clicks=4, impressions=100),
        ],
    )
    append_days(
        store,
        "wp-stats",
        [day("wp-stats", "item-0001", THIS, visitors=999), day("wp-stats", "item-0003", THIS, visitors=5)],
    )


@pytest.fixture
def planted(make_settings: Callable[..., Settings], store: Store, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A store whose run wrote item-0001..0003 (one template version), whose attempt log shows those and
    item-0010 (no template: the run never wrote it) published, and whose engagement log the test knows."""
    settings = make_settings(limit=3)
    assert run(settings, store).ok
    assert sorted(template_keys(store)) == ["item-0001", "item-0002", "item-0003"]
    publish(store, monkeypatch)
    engagement(store)
    return settings


def by_metric(rows: list[dict[str, str]]) -> dict[str, tuple[str, str, str]]:
    return {r["metric"]: (r["this period"], r["prior period"], r["change"]) for r in rows}


def by_segment(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    return {next(iter(r.values())): list(r.values())[1:] for r in rows}


def test_the_headline_has_the_true_figures_of_both_periods_and_the_change(planted: Settings, store: Store) -> None:
    report = build_report(store, "kpi", "daily", NOW)
    assert by_metric(report.audience_rows()) == {
        "visitors": ("52", "30", "+22 (+73.3%)"),  # 30 + 10 + 7 + wp-stats' 5; never wp-stats' 999
        "pageviews": ("59", "40", "+19 (+47.5%)"),
        "clicks": ("10", "5", "+5 (+100.0%)"),
        "impressions": ("300", "200", "+100 (+50.0%)"),
        "ctr": ("3.3%", "2.5%", "+0.8 pp"),  # 10 of 300 against 5 of 200
        "time_on_page": ("60 s", "45 s", "+15 s (+33.3%)"),  # the mean of the post-days reporting it
    }
    assert report.audience is not None
    now = report.audience.current
    assert (now.posts, now.provisional, now.ctr) == (4, 2, pytest.approx(10 / 300))
    days = {str(d["day"]): (d["visitors"], d["clicks"]) for d in report.audience.days.to_dicts()}
    assert days == {PRIOR: (30.0, 5.0), THIS: (52.0, 10.0)}  # the days counted, and only those
    assert "Audience" in terminal(report) and re.search(r"visitors\s+52\s+30\s+\+22 \(\+73\.3%\)", terminal(report))


def test_the_audience_by_template_version_category_and_publishing_slot(planted: Settings, store: Store) -> None:
    report = build_report(store, "kpi", "daily", NOW)
    [template] = set(template_keys(store).values())
    assert report.segment_rows("template")[0] == {
        "template version": template,
        "posts": "3",
        "visitors": "45",
        "visitors change": "+15 (+50.0%)",
        "clicks": "10",
        "clicks change": "+5 (+100.0%)",
        "CTR": "3.3%",
        "CTR change": "+0.8 pp",
    }
    assert by_segment(report.segment_rows("template"))["(not known)"] == ["1", "7", "+7", "0", "+0", "-", "-"]
    assert by_segment(report.segment_rows("category")) == {
        "Outdoor": ["1", "30", "+20 (+200.0%)", "6", "+4 (+200.0%)", "3.0%", "+1.0 pp"],  # item-0001
        "(not known)": ["1", "7", "+7", "0", "+0", "-", "-"],  # item-0010: published under no category
        "Travel": ["1", "10", "-10 (-50.0%)", "0", "-3 (-100.0%)", "-", "-"],
        "Kitchen": ["1", "5", "+5", "4", "+4", "4.0%", "-"],
    }
    assert by_segment(report.segment_rows("slot")) == {
        "06-12 UTC": ["2", "40", "+10 (+33.3%)", "6", "+1 (+20.0%)", "3.0%", "+0.5 pp"],
        "12-18 UTC": ["1", "7", "+7", "0", "+0", "-", "-"],
        "18-24 UTC": ["1", "5", "+5", "4", "+4", "4.0%", "-"],
    }
    markdown = report.markdown()
    for title in ("## Audience", "### By template version", "### By category", "### By publishing slot"):
        assert title in markdown
    assert "| category | posts | visitors | visitors change | clicks | clicks change | CTR | CTR change |" in markdown
    assert "may still be revised (2 post-day(s) of this period not final yet)" in markdown
    assert "this period 2026-11-19 to 2026-11-19, the prior 2026-11-18 to 2026-11-18" in markdown


def test_a_metric_two_sources_report_counts_the_first_source_s_figure_once() -> None:
    posts = post_days(
        [
            day("plausible", "a", THIS, visitors=30, pageviews=40),
            day("wp-stats", "a", THIS, False, visitors=999, shares=2),
            day("wp-stats", "b", THIS, visitors=5),
            day("search-console", "a", THIS, clicks=6),
        ]
    )
    rows = {r["slug"]: r for r in first_source(posts).to_dicts()}
    assert (rows["a"]["visitors"], rows["a"]["pageviews"], rows["a"]["shares"], rows["a"]["clicks"]) == (30, 40, 2, 6)
    assert rows["a"]["final"] is False and rows["b"]["visitors"] == 5 and len(rows) == 2


def test_the_audience_chart_is_stored_as_a_png_and_named_in_the_json(planted: Settings, store: Store) -> None:
    report = build_report(store, "kpi", "daily", NOW)
    files = write_report(store, report)
    png = store.get(files[AUDIENCE_CHART])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (charts.WIDTH_PX, charts.HEIGHT_PX)
    images = IMAGE.findall(report.markdown(store.url, embed=True))
    assert [name for name, _ in images] == [*CHARTS, AUDIENCE_CHART]
    assert base64.b64decode(images[-1][1]) == png
    assert f"- audience: `{store.url}/{files[AUDIENCE_CHART]}`" in store.get(files["markdown"]).decode()
    stored = json.loads(store.get(files["json"]))["audience"]
    assert (stored["current"]["visitors"], stored["prior"]["clicks"], stored["newest_day"]) == (52, 5, TODAY)
    assert stored["current"]["by"]["category"]["Kitchen"]["clicks"] == 4


def test_no_engagement_yet_is_one_line_and_no_audience_chart(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    report = build_report(store, "kpi", "daily", NOW)
    assert report.audience_rows() == [] and report.segment_rows("category") == []
    assert f"## Audience\n\n{NO_ENGAGEMENT}\n" in report.markdown()
    assert terminal(report).endswith(f"Audience\n{NO_ENGAGEMENT}")
    files = write_report(store, report)
    assert AUDIENCE_CHART not in files and sorted(n for n in files if n in CHARTS) == sorted(CHARTS)
    assert json.loads(store.get(files["json"]))["audience"]["current"]["visitors"] is None
    cost = build_report(store, "cost", "daily", NOW)
    assert cost.audience is None and "Audience" not in cost.markdown() + terminal(cost)


def chart_days(visitors: list[float | None], clicks: list[float | None]) -> pl.DataFrame:
    start = date(2026, 11, 1)
    return pl.DataFrame(
        {"day": pl.date_range(start, date(2026, 11, len(visitors)), "1d", eager=True), "visitors": visitors}
        | {"clicks": clicks},
        schema_overrides={"visitors": pl.Float64, "clicks": pl.Float64},
    )


def test_the_audience_chart_draws_both_counts_and_where_this_period_starts() -> None:
    fig = charts.audience_figure(chart_days([3, 5, 8, 13], [1, 0, 2, 4]), "t", date(2026, 11, 3))
    ax, right = fig.axes
    heights = [[p.get_height() for p in axes.patches] for axes in (ax, right)]
    assert heights == [[3, 5, 8, 13], [1, 0, 2, 4]]  # visitors on the left axis, clicks on the right
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert legend == ["visitors (left axis)", "clicks (right axis)", "this period starts"]
    assert [line.get_xdata()[0] for line in right.lines] == [1.5]  # between 11-02 and 11-03


def test_the_audience_chart_says_what_it_cannot_show() -> None:
    [ax] = charts.audience_figure(chart_days([0, 0], [None, None]), "t").axes
    assert "no engagement figures in these days" in [t.get_text() for t in ax.texts]
    fig = charts.audience_figure(chart_days([4, 2], [None, None]), "t")
    assert "clicks: no source reports them" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
