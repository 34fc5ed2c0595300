"""Planted engagement to rehearse template-rank: posts of each template going live day after day, each with a
click-through drawn around its template's true one, and each day's impressions and clicks drawn with noise
(numpy's seeded Generator), so a test or a benchmark knows which template is truly better."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlantedPost:
    """One post: its slug, template, the day (0-based) it went live, and (clicks, impressions) of each day since."""

    slug: str
    template: str
    live_day: int
    days: tuple[tuple[int, int], ...]

    def reward(self, window: int) -> float:
        """Its click-through over its first `window` days."""
        clicks = sum(c for c, _ in self.days[:window])
        shown = sum(i for _, i in self.days[:window])
        return clicks / shown if shown else 0.0


def plant(
    seed: int,
    ctrs: Mapping[str, float],
    days: int,
    per_day: int = 10,
    impressions: float = 150.0,
    spread: float = 0.3,
) -> list[PlantedPost]:
    """`per_day` posts of each template going live on each of `days` days, their figures to the last day: a post's
    click-through is its template's (`ctrs`) times a log-normal factor of sd `spread`; impressions are Poisson."""
    rng = np.random.default_rng(seed)
    posts = []
    for day in range(days):
        for t, (template, ctr) in enumerate(sorted(ctrs.items())):
            for n in range(per_day):
                rate = min(1.0, ctr * rng.lognormal(0.0, spread))
                shown = rng.poisson(impressions, days - day)
                clicks = rng.binomial(shown, rate)
                slug = f"p{day:03d}-{t}-{n:02d}"
                posts.append(PlantedPost(slug, template, day, tuple(zip(clicks.tolist(), shown.tolist(), strict=True))))
    return posts


def known_by(posts: list[PlantedPost], check_day: int, window: int) -> dict[str, list[float]]:
    """Each template's post rewards a check on `check_day` can know: posts whose first `window` days are over."""
    samples: dict[str, list[float]] = {}
    for post in posts:
        if post.live_day + window - 1 < check_day:
            samples.setdefault(post.template, []).append(post.reward(window))
    return samples
