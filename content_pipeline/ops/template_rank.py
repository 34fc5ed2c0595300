"""template-rank: prompt templates ranked by QA pass rate and cost per success over a period, with sample
sizes and a significance note; the bottom 20% named to retire and the top 20% to promote, and with apply
the active set changed. Every decision is recorded with its KPI evidence and the change."""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from content_pipeline.generation.templates import MAX_WEIGHT, read_active, write_active
from content_pipeline.money import nano_expr, to_usd
from content_pipeline.ops.kpis import PERIODS, last_outcomes
from content_pipeline.ops.outcomes import outcomes
from content_pipeline.store import Store, layout

MIN_SAMPLE = 30  # fewer QA decisions than this: too few to retire or promote a template on
SHARE = 0.2  # the bottom and top shares named to retire and to promote
Z95 = 1.96
QA_DECIDED = ("qa", "content_policy")  # rejects that judge the template (transient ones do not)


def wilson(passed: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of a pass rate of `passed` in `n` (0, 1 when n is 0)."""
    if not n:
        return 0.0, 1.0
    p, z2 = passed / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Ranked:
    """One template's evidence: QA decisions (n), passes, pass rate with its 95% interval, cost and cost
    per success, and what the sample says."""

    template: str
    active: bool
    n: int
    passed: int
    pass_rate: float | None
    interval: tuple[float, float]
    cost_usd: float
    cost_per_success_usd: float | None
    note: str = ""


@dataclass
class Ranking:
    """A ranking and its decision: the ranked evidence, the templates named to retire and to promote,
    the active set before and after, and whether it was applied."""

    period: str
    start: str
    end: str
    rows: list[Ranked]
    retire: list[str]
    promote: list[str]
    active_before: dict[str, int]
    active_after: dict[str, int]
    applied: bool = False
    kept: list[str] = field(default_factory=list)  # named, but left as they were (too small a sample)
    decision: str | None = None  # where the decision is recorded

    def lines(self) -> list[str]:
        out = [f"template-rank {self.period} ({self.start} to {self.end}), by QA pass rate then cost per success:"]
        for i, r in enumerate(self.rows, 1):
            rate = "-" if r.pass_rate is None else f"{r.pass_rate:.1%} [{r.interval[0]:.1%}-{r.interval[1]:.1%}]"
            cps = "-" if r.cost_per_success_usd is None else f"${r.cost_per_success_usd:.4f}"
            flag = "" if r.active else " (inactive)"
            out.append(f"{i:>2}. {r.template}{flag}: pass {rate} of n={r.n}, cost/success {cps}; {r.note}")
        out.append(f"retire (bottom {SHARE:.0%}): {', '.join(self.retire) or 'none'}")
        out.append(f"promote (top {SHARE:.0%}): {', '.join(self.promote) or 'none'}")
        out += [f"kept as it was: {key} (fewer than {MIN_SAMPLE} QA decisions)" for key in self.kept]
        change = f"active set {self.active_before} -> {self.active_after}"
        out.append(f"applied: {change}" if self.applied else f"not applied (--apply would make: {change})")
        if self.decision:
            out.append(f"decision recorded: {self.decision}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _evidence(frame: pl.DataFrame, active: dict[str, int]) -> list[Ranked]:
    key = pl.concat_str("prompt_template", pl.lit(":"), "prompt_version").alias("template")
    frame = frame.with_columns(key)
    cost = frame.group_by("template").agg(cost_nano=nano_expr("cost_usd").sum())
    last = last_outcomes(frame)
    decided = last.filter((pl.col("status") == "success") | pl.col("cause").is_in(QA_DECIDED))
    counts = decided.group_by("template").agg(n=pl.len(), passed=(pl.col("status") == "success").sum())
    rows = []
    for row in counts.join(cost, on="template", how="full", coalesce=True).fill_null(0).iter_rows(named=True):
        n, passed = int(row["n"]), int(row["passed"])
        rows.append(
            Ranked(
                template=row["template"],
                active=row["template"] in active,
                n=n,
                passed=passed,
                pass_rate=passed / n if n else None,
                interval=wilson(passed, n),
                cost_usd=to_usd(int(row["cost_nano"])),
                cost_per_success_usd=to_usd(int(row["cost_nano"])) / passed if passed else None,
            )
        )
    rows.sort(key=lambda r: (-(r.pass_rate or 0.0), r.cost_per_success_usd or math.inf, r.template))
    _notes(rows)
    return rows


def _notes(rows: list[Ranked]) -> None:
    """What each sample says, against the interval of the leader (the best with a sample big enough)."""
    leader = next((r for r in rows if r.n >= MIN_SAMPLE), None)
    for r in rows:
        if r.n < MIN_SAMPLE:
            r.note = f"small sample (n<{MIN_SAMPLE}): not significant"
        elif r is leader:
            r.note = "leader"
        elif leader is not None and r.interval[1] >= leader.interval[0]:
            r.note = "not significantly below the leader (95% intervals overlap)"
        else:
            r.note = "significantly below the leader (95%)"


def rank_templates(store: Store, period: str = "30d", now: datetime | None = None) -> Ranking:
    """Rank the templates that decided items in the period; name the bottom and top SHARE of the active ones."""
    end = now or datetime.now(UTC)
    start = end - PERIODS[period]
    active, _ = read_active(store)
    rows = _evidence(outcomes(store, since=start, until=end).frame, active)
    ranked = [r.template for r in rows if r.active]
    k = max(1, round(SHARE * len(ranked))) if len(ranked) >= 2 else 0
    promote, retire = ranked[:k], (ranked[len(ranked) - k :] if k else [])
    by_key = {r.template: r for r in rows}
    kept = [key for key in [*promote, *retire] if by_key[key].n < MIN_SAMPLE]
    after = {key: weight for key, weight in active.items() if key not in retire or key in kept}
    for key in promote:
        if key not in kept:
            after[key] = min(MAX_WEIGHT, after.get(key, 1) + 1)
    start_at, end_at = start.isoformat(timespec="seconds"), end.isoformat(timespec="seconds")
    return Ranking(period, start_at, end_at, rows, retire, promote, dict(active), after or dict(active), kept=kept)


def decide(store: Store, ranking: Ranking, apply: bool) -> Ranking:
    """Record the decision (evidence and change) in the store; with `apply`, make its active set current."""
    if apply and ranking.active_after != ranking.active_before:
        _, version = read_active(store)
        write_active(store, ranking.active_after, version)
        ranking.applied = True
    at = datetime.now(UTC)
    ranking.decision = f"{layout.TEMPLATE_DECISIONS}{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}.json"
    body = {**ranking.to_dict(), "at": at.isoformat(timespec="seconds"), "delta": _delta(ranking)}
    store.put(ranking.decision, json.dumps(body, sort_keys=True, indent=1).encode())
    return ranking


def _delta(ranking: Ranking) -> dict[str, Any]:
    before, after = ranking.active_before, ranking.active_after
    return {
        "retired": sorted(set(before) - set(after)),
        "reweighted": {k: [before[k], after[k]] for k in sorted(set(before) & set(after)) if before[k] != after[k]},
        "applied": ranking.applied,
    }
