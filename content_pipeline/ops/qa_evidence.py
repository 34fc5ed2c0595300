"""Each template version's QA evidence over a period: QA decisions, passes, the pass rate with its 95% Wilson
interval, cost and cost per success (template-rank shows it beside the reward; qa_pass rewards it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from content_pipeline.money import nano_expr, to_usd
from content_pipeline.ops.kpis import last_outcomes
from content_pipeline.ops.outcomes import outcomes
from content_pipeline.store import Store

Z95 = 1.96
QA_DECIDED = ("qa", "content_policy")  # rejects that judge the template (transient ones do not)
TEMPLATE = pl.concat_str("prompt_template", pl.lit(":"), "prompt_version").alias("template")


def wilson(passed: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of a pass rate of `passed` in `n` (0, 1 when n is 0)."""
    if not n:
        return 0.0, 1.0
    p, z2 = passed / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class QaEvidence:
    """QA decisions (n: successes and QA rejects, each item's last outcome), passes, cost in USD."""

    n: int = 0
    passed: int = 0
    cost_usd: float = 0.0

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.n if self.n else None

    @property
    def cost_per_success_usd(self) -> float | None:
        return self.cost_usd / self.passed if self.passed else None

    def line(self) -> str:
        if not self.n:
            return "no QA decision in the period"
        low, high = wilson(self.passed, self.n)
        cps = "-" if self.cost_per_success_usd is None else f"${self.cost_per_success_usd:.4f}"
        return f"QA pass {self.pass_rate:.1%} [{low:.1%}-{high:.1%}] of {self.n}, cost/success {cps}"


def qa_decided(frame: pl.DataFrame) -> pl.DataFrame:
    """template, slug and passed (bool) of each item whose last outcome was a success or a QA reject."""
    last = last_outcomes(frame.with_columns(TEMPLATE))
    decided = last.filter((pl.col("status") == "success") | pl.col("cause").is_in(QA_DECIDED))
    return decided.select("template", "slug", passed=pl.col("status") == "success")


def qa_evidence(store: Store, start: datetime, end: datetime) -> dict[str, QaEvidence]:
    """Each template version's QA evidence over the outcomes finished from `start` to `end`."""
    frame = outcomes(store, since=start, until=end).frame
    cost = frame.with_columns(TEMPLATE).group_by("template").agg(cost_nano=nano_expr("cost_usd").sum())
    counts = qa_decided(frame).group_by("template").agg(n=pl.len(), passed=pl.col("passed").sum())
    joined = counts.join(cost, on="template", how="full", coalesce=True).fill_null(0)
    return {
        row["template"]: QaEvidence(int(row["n"]), int(row["passed"]), to_usd(int(row["cost_nano"])))
        for row in joined.iter_rows(named=True)
    }
