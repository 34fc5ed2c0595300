"""KPI and cost reports: a period's figures against the prior period with the change, as a terminal table,
markdown and table rows, and PNG charts stored beside the report in the store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from content_pipeline.ops import charts
from content_pipeline.ops.audience import UNKNOWN, Audience, AudienceFigures, audience
from content_pipeline.ops.cadence import HOW, Cadence, cadence
from content_pipeline.ops.choices import Kind
from content_pipeline.ops.kpis import PERIODS, Figures, figures, per_day
from content_pipeline.ops.outcomes import outcomes
from content_pipeline.posting_plan import PostingPlan
from content_pipeline.publish.history import read_history
from content_pipeline.publish.slo import publish_figures
from content_pipeline.store import Store, layout

# the headline rows of each kind, and how each is shown: a count, a rate or money
ROWS: dict[str, list[tuple[str, str]]] = {
    "kpi": [
        ("items_attempted", "count"),
        ("successes", "count"),
        ("rejects", "count"),
        ("success_rate", "rate"),
        ("escalation_rate", "rate"),
        ("cost_per_success_usd", "money"),
    ],
    "cost": [
        ("cost_usd", "money"),
        ("tokens_in", "count"),
        ("tokens_out", "count"),
        ("tokens_cached", "count"),
        ("successes", "count"),
        ("cost_per_success_usd", "money"),
    ],
}
CHARTS = ("cost-and-successes", "success-rate", "rejects-by-reason")  # every report has these
AUDIENCE_CHART = "audience"  # a KPI report adds it once the engagement log has figures
AUDIENCE_ROWS = [
    ("visitors", "count"),
    ("pageviews", "count"),
    ("clicks", "count"),
    ("impressions", "count"),
    ("ctr", "rate"),
    ("time_on_page", "seconds"),
]
SEGMENTS = {"template": "template version", "category": "category", "slot": "publishing slot"}
NO_ENGAGEMENT = "no engagement figures yet: run `content-pipeline engagement pull`"


def _show(value: float | int | None, how: str) -> str:
    if value is None:
        return "-"
    return {"count": f"{value:,}", "rate": f"{value:.1%}", "money": f"${value:,.4f}", "seconds": f"{value:,.0f} s"}[how]


def change(current: float | int | None, prior: float | int | None, how: str) -> str:
    """The change from the prior period: points for a rate, the difference and its share otherwise."""
    if current is None or prior is None:
        return "-"
    if how == "rate":
        return f"{100 * (current - prior):+.1f} pp"
    delta = current - prior
    if how == "seconds":
        shown = f"{delta:+,.0f} s"
    else:
        shown = f"{delta:+,}" if how == "count" else f"{'+' if delta >= 0 else '-'}${abs(delta):,.4f}"
    return shown + (f" ({delta / prior:+.1%})" if prior else "")


@dataclass
class Report:
    """One report: its kind and period, the period's and the prior period's figures, the days charted,
    and where its files are in the store once written (with the charts' PNG bytes, to embed)."""

    kind: Kind
    period: str
    start: datetime
    end: datetime
    current: Figures
    prior: Figures
    days: pl.DataFrame
    files: dict[str, str] = field(default_factory=dict)
    pngs: dict[str, bytes] = field(default_factory=dict, repr=False)  # each chart's PNG, once written
    publishing: tuple[dict[str, Any], dict[str, Any]] | None = None  # this period's and the prior's
    audience: AudienceFigures | None = None  # a KPI report's
    cadence: Cadence | None = None  # a KPI report's: posts per day against the posting plan

    def audience_rows(self) -> list[dict[str, str]]:
        """What readers did, this period against the prior: the audience's headline table."""
        if self.audience is None or self.audience.empty:
            return []
        now, before = self.audience.current.headline(), self.audience.prior.headline()
        return [
            {
                "metric": name,
                "this period": _show(now[name], how),
                "prior period": _show(before[name], how),
                "change": change(now[name], before[name], how),
            }
            for name, how in AUDIENCE_ROWS
        ]

    def segment_rows(self, name: str) -> list[dict[str, str]]:
        """Visitors, clicks and CTR of each segment of a segmentation (template, category or slot), this period
        against the prior, the most visited first."""
        if self.audience is None:
            return []
        now, before = self.audience.current.by.get(name, {}), self.audience.prior.by.get(name, {})
        rows = []
        for value in sorted(now, key=lambda v: (v == UNKNOWN, -(now[v].visitors or 0), v)):
            a, b = now[value], before.get(value, Audience())
            rows.append(
                {
                    SEGMENTS[name]: value,
                    "posts": str(a.posts),
                    "visitors": _show(a.visitors, "count"),
                    "visitors change": change(a.visitors, b.visitors, "count"),
                    "clicks": _show(a.clicks, "count"),
                    "clicks change": change(a.clicks, b.clicks, "count"),
                    "CTR": _show(a.ctr, "rate"),
                    "CTR change": change(a.ctr, b.ctr, "rate"),
                }
            )
        return rows

    def publishing_rows(self) -> list[dict[str, str]]:
        """Publishing's figures, this period against the prior, and the success rate against the SLO."""
        if self.publishing is None:
            return []
        now, before = self.publishing
        rows = [
            {
                "metric": name,
                "this period": str(now[name]),
                "prior period": str(before[name]),
                "change": change(now[name], before[name], "count"),
            }
            for name in ("live_attempts", "published", "failed", "simulated")
        ]
        verdict = "no live attempt" if now["success_rate"] is None else ("met" if now["slo_met"] else "MISSED")
        rows.append(
            {
                "metric": f"success rate (SLO {now['slo']:.0%}: {verdict})",
                "this period": _show(now["success_rate"], "rate"),
                "prior period": _show(before["success_rate"], "rate"),
                "change": change(now["success_rate"], before["success_rate"], "rate"),
            }
        )
        return rows

    def rows(self) -> list[dict[str, str]]:
        """metric, this period, prior period, change: the headline table."""
        now, before = self.current.headline(), self.prior.headline()
        return [
            {
                "metric": name,
                "this period": _show(now[name], how),
                "prior period": _show(before[name], how),
                "change": change(now[name], before[name], how),
            }
            for name, how in ROWS[self.kind]
        ]

    def reason_rows(self) -> list[dict[str, str]]:
        now, before = self.current.rejects_by_reason, self.prior.rejects_by_reason
        return [
            {
                "reason": r,
                "this period": str(now.get(r, 0)),
                "prior period": str(before.get(r, 0)),
                "change": change(now.get(r, 0), before.get(r, 0), "count"),
            }
            for r in sorted(set(now) | set(before), key=lambda r: (-now.get(r, 0), r))
        ]

    def title(self) -> str:
        return (
            f"{self.kind.upper()} report, {self.period}: {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
        )

    def markdown(self, store_url: str = "", embed: bool = False) -> str:
        """The report as markdown; its charts named by their place in the store, and with `embed` shown
        too, each an image with a `data:` URI (alt text `<chart> chart`): what the Prefect UI renders."""
        lines = [f"# {self.title()}", "", *_table(self.rows())]
        if self.kind == "kpi" and self.reason_rows():
            lines += ["", "## Rejects by reason", "", *_table(self.reason_rows())]
        if self.publishing_rows():
            lines += ["", "## Publishing", "", *_table(self.publishing_rows())]
        if self.cadence is not None:
            found = self.cadence
            lines += [
                "",
                f"## {found.heading()}",
                "",
                *_table(found.rows()),
                "",
                HOW,
                "",
                *(f"- {n}" for n in found.notes()),
            ]
        if self.kind == "cost" and self.current.by_model:
            lines += ["", "## By model (this period)", "", *_table(_shown(self.current.by_model))]
        if self.current.by_template:
            lines += ["", "## By prompt template version (this period)", "", *_table(_shown(self.current.by_template))]
        if self.audience is not None:
            lines += ["", "## Audience", "", *self._audience_lines()]
        if self.files:
            lines += ["", "## Charts", "", *(self._images() if embed else [])] + [
                f"- {name}: `{store_url}/{key}`" for name, key in self.files.items() if key.endswith(".png")
            ]
        return "\n".join(lines) + "\n"

    def _audience_lines(self) -> list[str]:
        """The audience's headline table, how it was counted, and a table per segmentation."""
        found = self.audience
        if found is None or found.empty:
            return [NO_ENGAGEMENT]
        lines = [
            *_table(self.audience_rows()),
            "",
            f"UTC days: {found.span()}; the newest day with figures: {found.newest}. A metric two sources report counts once (the first source by name). CTR: "
            "clicks per impression; time on page: the mean over the post-days that report it. Figures of days "
            f"inside a source's lag may still be revised ({found.current.provisional} post-day(s) of this period "
            "not final yet).",
            *(f"- {note}" for note in found.notes),
        ]
        for name, title in SEGMENTS.items():
            if name in found.current.by:
                lines += ["", f"### By {title}", "", *(_table(self.segment_rows(name)) or ["no figures this period"])]
        return lines

    def _images(self) -> list[str]:
        """Each chart as a markdown image with its PNG inline, a paragraph of its own."""
        return [line for name, data in self.pngs.items() for line in (f"![{name} chart]({charts.data_uri(data)})", "")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "current": {
                **self.current.headline(),
                "rejects_by_reason": self.current.rejects_by_reason,
                "by_model": self.current.by_model,
                "by_template": self.current.by_template,
            },
            "prior": {**self.prior.headline(), "rejects_by_reason": self.prior.rejects_by_reason},
            "publishing": None
            if self.publishing is None
            else {"current": self.publishing[0], "prior": self.publishing[1]},
            "audience": None if self.audience is None else self.audience.to_dict(),
            "cadence": None if self.cadence is None else self.cadence.to_dict(),
            "files": self.files,
        }


def _shown(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows for a table: nano-dollars as dollars, rates as percentages."""
    out = []
    for row in rows:
        shown = {}
        for key, value in row.items():
            if key == "cost_nano":
                shown["cost"] = _show(value / 1e9, "money")
            elif key.endswith("_rate"):
                shown[key] = _show(value, "rate")
            elif key.endswith("_usd"):
                shown[key] = _show(value, "money")
            else:
                shown[key] = str(value)
        out.append(shown)
    return out


def _table(rows: list[dict[str, str]]) -> list[str]:
    if not rows:
        return []
    heads = list(rows[0])
    return [
        "| " + " | ".join(heads) + " |",
        "|" + "---|" * len(heads),
        *("| " + " | ".join(str(r[h]) for h in heads) + " |" for r in rows),
    ]


def _aligned(rows: list[dict[str, str]]) -> list[str]:
    heads = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in heads}
    return ["  ".join(h.ljust(widths[h]) for h in heads)] + [
        "  ".join(r[h].ljust(widths[h]) for h in heads) for r in rows
    ]


def report_key(report: Report) -> str:
    """The report's artifact key: `kpi-daily-report`, `cost-30-day-report`, ..."""
    return f"{report.kind}-{report.period}-report".replace("30d", "30-day")


def terminal(report: Report) -> str:
    """The headline table, aligned for a terminal; then a KPI report's publishing, posting plan and audience."""
    lines = [report.title(), *_aligned(report.rows())]
    if report.publishing_rows():
        lines += ["", "Publishing", *_aligned(report.publishing_rows())]
    if report.cadence is not None:
        found = report.cadence
        lines += ["", found.heading(), *(_aligned(found.rows()) if found.rows() else []), *found.notes()]
    if report.audience is not None:
        lines += ["", "Audience", *(_aligned(report.audience_rows()) if report.audience_rows() else [NO_ENGAGEMENT])]
    return "\n".join(lines)


def build_report(
    store: Store,
    kind: Kind,
    period: str,
    now: datetime | None = None,
    plan: PostingPlan | None = None,
) -> Report:
    """The figures of the `period` ending `now` and of the one before it, from the ledger; a KPI report's
    audience from the engagement log too, and its posts per day against `plan` (PUBLISH_PLAN) from the attempt log."""
    length = PERIODS[period]
    end = now or datetime.now(UTC)
    start, prior_start = end - length, end - 2 * length
    frame = outcomes(store, since=prior_start, until=end).frame
    boundary = pl.col("finished") >= start
    current, prior = figures(frame.filter(boundary)), figures(frame.filter(~boundary))
    report = Report(kind, period, start, end, current, prior, per_day(frame, prior_start, end))
    if kind == "kpi":
        history = read_history(store, keep_damaged=False)
        report.publishing = (publish_figures(history, start, end), publish_figures(history, prior_start, start))
        report.audience = audience(store, start, end, prior_start)
        report.cadence = cadence(history, plan, start, end)
    return report


def write_report(store: Store, report: Report) -> dict[str, str]:
    """The report (markdown and JSON) and its charts in `reports/<kind>-<period>/<end>/` (a KPI report's audience
    chart too, once the engagement log has figures); the keys.
    The charts' bytes stay on the report too (`pngs`), for markdown that embeds them."""
    base = f"{layout.REPORTS_PREFIX}{report.kind}-{report.period}/{report.end:%Y%m%dT%H%M%SZ}/"
    first = report.start - (report.end - report.start)
    span = f"{report.period} and the period before, {first:%Y-%m-%d} to {report.end:%Y-%m-%d}"
    pngs = {
        "cost-and-successes": charts.cost_and_successes(report.days, f"Cost and successes per day ({span})"),
        "success-rate": charts.success_rate(report.days, f"Success rate per day ({span})"),
        "rejects-by-reason": charts.rejects_by_reason(
            report.current.rejects_by_reason, report.prior.rejects_by_reason, f"Rejects by reason ({span})"
        ),
    }
    if report.audience is not None and not report.audience.empty:
        days = report.audience.days["day"]
        title = f"Visitors and clicks per day ({report.period} and the period before, {days[0]} to {days[-1]})"
        pngs[AUDIENCE_CHART] = charts.audience(report.audience.days, title, report.audience.start)
    for name, data in pngs.items():
        store.put(f"{base}{name}.png", data)
        report.files[name] = f"{base}{name}.png"
    report.pngs = pngs
    report.files["markdown"], report.files["json"] = f"{base}report.md", f"{base}report.json"
    store.put(report.files["markdown"], report.markdown(store.url).encode())
    store.put(report.files["json"], json.dumps(report.to_dict(), sort_keys=True, default=str).encode())
    return report.files
