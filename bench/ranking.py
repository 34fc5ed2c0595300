"""Scenario 8, template-rank's statistics: how often it promotes a template in an A/A test (two templates truly
alike, checked daily for 30 days) over many seeds, against a plain t-test checked the same way, and how soon it
promotes a truly better template."""

from __future__ import annotations

import statistics
from typing import Any

from scipy.stats import ttest_ind

from content_pipeline.ops.template_rank import judge
from content_pipeline.rehearsal.planted import known_by, plant

ACTIVE = {"a:1": 1, "b:1": 1}


def _first_decision(samples_by_day: list[dict[str, list[float]]], alpha: float, min_posts: int) -> int | None:
    for day, samples in enumerate(samples_by_day):
        judged = judge(samples, ACTIVE, alpha, min_posts)
        if judged.promote or judged.retire:
            return day
    return None


def _first_t_test(samples_by_day: list[dict[str, list[float]]], alpha: float, min_posts: int) -> int | None:
    """The day a two-sample t-test at `alpha`, looked at daily, first calls a difference."""
    for day, samples in enumerate(samples_by_day):
        a, b = samples.get("a:1", []), samples.get("b:1", [])
        if min(len(a), len(b)) >= min_posts and ttest_ind(a, b, equal_var=False).pvalue < alpha:
            return day
    return None


def sequential_checks(
    seeds: int, days: int, per_day: int, window: int, alpha: float, min_posts: int, lift: float
) -> dict[str, Any]:
    """Over `seeds` plantings: the share where a daily check ever promoted or retired in an A/A test (ours and a
    daily t-test), and with b's click-through `lift` higher, the share promoted and the median day of it."""
    out: dict[str, Any] = {"seeds": seeds, "days": days, "posts_per_template_per_day": per_day, "alpha": alpha}
    for name, ctrs in (("a_a", {"a:1": 0.03, "b:1": 0.03}), ("a_b", {"a:1": 0.03, "b:1": 0.03 * (1 + lift)})):
        ours, naive = [], []
        for seed in range(seeds):
            posts = plant(seed, ctrs, days, per_day)
            by_day = [known_by(posts, day, window) for day in range(days)]
            ours.append(_first_decision(by_day, alpha, min_posts))
            naive.append(_first_t_test(by_day, alpha, min_posts))
        decided = [d for d in ours if d is not None]
        out[f"{name}_decided_share"] = round(len(decided) / seeds, 4)
        out[f"{name}_t_test_decided_share"] = round(sum(d is not None for d in naive) / seeds, 4)
        out[f"{name}_median_day"] = statistics.median(decided) if decided else None
    return out
