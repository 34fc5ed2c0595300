"""Each post's reward for template-rank: its click-through over its first N days from the day it went live, only
once all N are complete (so a counted reward never changes), clicks and impressions from one source; a count
for a live post nobody came to is 0, not unknown."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.reward import post_rewards
from content_pipeline.engagement.views import post_days

LIVE = date(2026, 11, 1)


def day(source: str, slug: str, offset: int, final: bool = True, **metrics: float) -> PostDay:
    return PostDay(source=source, slug=slug, day=LIVE + timedelta(days=offset), metrics=metrics, final=final)


def rewards(days: list[PostDay], reward: str, as_of_offset: int, window: int = 3) -> dict[str, float]:
    frame = post_rewards(
        post_days(days), reward, window, {"a": LIVE, "b": LIVE, "quiet": LIVE}, LIVE + timedelta(as_of_offset)
    )
    return dict(zip(frame["slug"], frame["reward"], strict=True))


FIGURES = [
    day("search-console", "a", 0, clicks=1, impressions=100),
    day("search-console", "a", 1, clicks=3, impressions=100),
    day("search-console", "a", 2, clicks=2, impressions=100),
    day("search-console", "a", 3, clicks=90, impressions=100),  # after its window: never counted
    day("search-console", "b", 0, clicks=4, impressions=50),
    day("search-console", "b", 2, clicks=0, impressions=50),  # no row on day 1: no impression that day
]


def test_the_click_through_of_the_first_days_once_they_are_complete() -> None:
    assert rewards(FIGURES, "ctr", as_of_offset=1) == {}  # day 2 is not over yet
    found = rewards(FIGURES, "ctr", as_of_offset=3)
    assert found == {"a": pytest.approx(6 / 300), "b": pytest.approx(4 / 100)}
    assert rewards(FIGURES, "ctr", as_of_offset=30) == found  # a counted reward never changes


def test_a_day_still_inside_the_sources_lag_holds_the_post_back() -> None:
    late = [*FIGURES[:2], day("search-console", "a", 2, False, clicks=2, impressions=100)]
    assert rewards(late, "ctr", as_of_offset=10) == {}


def test_clicks_and_impressions_come_from_one_source() -> None:
    other = day("another-console", "a", 1, clicks=50, impressions=60)  # first by name, for day 1 only
    found = rewards([*FIGURES, other], "ctr", as_of_offset=3)
    assert found["a"] == pytest.approx((1 + 50 + 2) / (100 + 60 + 100))


def test_a_count_for_a_live_post_nobody_came_to_is_zero() -> None:
    visits = [day("plausible", "a", n, visitors=10) for n in range(3)]
    assert rewards(visits, "visitors", as_of_offset=5) == {"a": 30.0, "b": 0.0, "quiet": 0.0}
