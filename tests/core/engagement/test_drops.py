"""Drop detection on planted engagement: a 40% drop on a complete day is named, overall and for the template
that fell; the same drop on a day still inside the source's lag is not compared; a low-volume post's swing,
or a baseline too small to mean anything, names nothing."""

from __future__ import annotations

from datetime import date, timedelta

from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.drops import ALL, detect_drops
from content_pipeline.engagement.views import post_days

LAST = date(2026, 12, 6)


def history(
    posts: dict[str, float], days: int = 15, last_scale: float = 1.0, last_final: bool = True, only=()
) -> list[PostDay]:
    """`days` days of steady visitors per post; on the last day the posts in `only` (all when empty) are
    scaled by `last_scale`, and that day is final or not."""
    rows = []
    for back in range(days):
        on = LAST - timedelta(days=back)
        for slug, visitors in posts.items():
            scaled = visitors * (last_scale if back == 0 and (not only or slug in only) else 1.0)
            final = last_final or back > 0
            rows.append(PostDay(source="plausible", slug=slug, day=on, metrics={"visitors": scaled}, final=final))
    return rows


POSTS = {"a": 100.0, "b": 120.0, "c": 80.0, "tiny": 3.0}
TEMPLATES = {
    "template": {
        "a": "catalogue-item v2",
        "b": "catalogue-item v2",
        "c": "catalogue-item v1",
        "tiny": "catalogue-item v1",
    }
}


def test_a_forty_percent_drop_on_a_complete_day_is_named_overall_and_for_its_template() -> None:
    frame = post_days(history(POSTS, last_scale=0.6, only=("a", "b")))
    drops = detect_drops(frame, "visitors", segments=TEMPLATES)
    # overall -29%: under the 30% threshold; the template that fell is named
    assert [(d.segment, round(d.change, 2)) for d in drops] == [("template catalogue-item v2", -0.4)]
    drops = detect_drops(post_days(history(POSTS, last_scale=0.6)), "visitors", segments=TEMPLATES)
    assert drops[0].segment == ALL and round(drops[0].change, 2) == -0.4 and drops[0].day == LAST
    assert drops[0].line() == f"plausible visitors of all posts on {LAST}: 181.8 against 303 (-40%)"


def test_a_drop_on_a_day_inside_the_lag_is_not_compared() -> None:
    frame = post_days(history(POSTS, last_scale=0.6, last_final=False))
    assert detect_drops(frame, "visitors", segments=TEMPLATES) == []


def test_a_low_volume_posts_swing_and_a_thin_baseline_name_nothing() -> None:
    swing = post_days(history(POSTS, last_scale=0.0, only=("tiny",)))  # the tiny post lost everything
    assert detect_drops(swing, "visitors", segments={"post": {"tiny": "tiny"}}) == []  # 3 a day: below 50
    thin = post_days(history({"a": 10.0, "b": 12.0}, last_scale=0.5))
    assert detect_drops(thin, "visitors") == []
    assert detect_drops(thin, "visitors", min_baseline=10) != []


def test_the_weekday_baseline_compares_with_the_same_day_a_week_before() -> None:
    rows = history(POSTS, days=8)
    weekday = [r for r in rows if r.day == LAST - timedelta(days=7)]
    rows = [r for r in rows if r not in weekday] + [
        r.model_copy(update={"metrics": {"visitors": r.metrics["visitors"] * 2}}) for r in weekday
    ]
    drops = detect_drops(post_days(rows), "visitors", how="weekday")
    assert len(drops) == 1 and round(drops[0].change, 2) == -0.5
