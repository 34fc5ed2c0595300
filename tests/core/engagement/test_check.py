"""Health's engagement check and `engagement drops` on planted figures: a 40% drop on a complete day turns
health red and names the drop, overall and by template, category and slot; the same drop on a day still
inside the source's lag does not; a low-volume post's swing does not; damaged log lines are amber."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cli.main import main
from content_pipeline.engagement.check import drop_check
from content_pipeline.ops.health import health
from content_pipeline.store import Store, layout
from tests.conftest import make_item
from tests.support.engagement import TODAY, figures, publish_on, steady_then, written_by

POSTS = [f"item-{n:04d}" for n in range(1, 5)]
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture
def published(store: Store) -> Store:
    categories = {slug: make_item(int(slug[-4:]))["category"] for slug in POSTS}
    publish_on(store, {slug: TODAY - timedelta(days=20) for slug in POSTS}, categories=categories)
    written_by(store, {slug: "catalogue-item:1" for slug in POSTS})
    return store


def engagement(store: Store, settings) -> tuple[str, str]:
    [check] = [c for c in health(store, settings).checks if c.name == "engagement"]
    return check.level, check.detail


def test_a_40_percent_drop_on_a_complete_day_is_red_and_segmented(published: Store, make_settings) -> None:
    figures(published, "plausible", steady_then(POSTS, 50.0, YESTERDAY, drop=0.4))
    settings = make_settings()
    level, detail = engagement(published, settings)
    assert level == "red" and health(published, settings).level == "red"
    assert detail.startswith(f"down past 30%: plausible visitors of all posts on {YESTERDAY}: 120 against 200 (-40%)")
    found = drop_check(published, settings)
    categories = {f"category {make_item(int(slug[-4:]))['category']}" for slug in POSTS}
    segments = {d.segment for d in found.drops}
    assert segments == {"all posts", "template catalogue-item:1", "slot 06-12 UTC", *categories}
    assert {d.metric for d in found.drops} == {"visitors"}  # pageviews held steady


def test_the_same_drop_inside_the_sources_lag_is_not_compared(published: Store, make_settings) -> None:
    figures(published, "search-console", steady_then(POSTS, 50.0, YESTERDAY, drop=0.4), final_before=YESTERDAY)
    level, detail = engagement(published, make_settings())
    newest_complete = YESTERDAY - timedelta(days=1)
    assert level == "green", detail
    assert detail == f"no drop past 30% on the newest complete day (search-console {newest_complete})"


def test_a_low_volume_posts_swing_is_not_a_drop(published: Store, make_settings) -> None:
    steady = steady_then(POSTS[:3], 60.0, YESTERDAY, drop=0.0)
    swing = steady_then(POSTS[3:], 8.0, YESTERDAY, drop=0.75)  # 8 visitors a day, then 2
    figures(published, "plausible", {**steady, **swing})
    found = drop_check(published, make_settings())
    assert found.level == "green" and found.drops == []
    assert engagement(published, make_settings())[0] == "green"


def test_a_small_site_does_not_alert_below_the_minimum_baseline(published: Store, make_settings) -> None:
    figures(published, "plausible", steady_then(POSTS, 10.0, YESTERDAY, drop=0.5))  # 40 a day, then 20
    assert drop_check(published, make_settings()).drops == []
    assert drop_check(published, make_settings(engagement_min_baseline=30)).level == "red"


def test_the_drops_command_exits_2_on_a_drop(published: Store, store_url: str, monkeypatch, capsys) -> None:
    figures(published, "plausible", steady_then(POSTS, 50.0, YESTERDAY, drop=0.4))
    monkeypatch.setenv("STORE_URL", store_url)
    assert main(["engagement", "drops"]) == 2
    out = capsys.readouterr().out
    assert f"engagement: down past 30%: plausible visitors of all posts on {YESTERDAY}" in out
    assert "more)" in out and "template catalogue-item:1" in out
    monkeypatch.setenv("ENGAGEMENT_DROP_ALERT", "0.5")
    assert main(["engagement", "drops"]) == 0


def test_a_damaged_log_line_is_named_amber_and_kept_aside(published: Store, make_settings) -> None:
    figures(published, "plausible", steady_then(POSTS, 50.0, YESTERDAY, drop=0.0))
    [part] = published.list(layout.ENGAGEMENT_PREFIX)
    lines = (published.get(part.key) or b"").split(b"\n")
    oldest = (YESTERDAY - timedelta(days=7)).isoformat().encode()
    number = next(i for i, line in enumerate(lines) if oldest in line)  # a day no comparison reads
    lines[number] = lines[number].replace(b'"visitors":50', b'"visitors":99')
    published.put(part.key, b"\n".join(lines))
    found = drop_check(published, make_settings())
    assert found.level == "amber" and found.damaged == [
        f"{part.key}: line {number + 1}: fails its checksum (changed since it was written)"
    ]
    assert "1 damaged engagement line(s) kept aside in quarantine/" in found.line()
    assert published.list("quarantine/")


def test_a_source_gone_quiet_is_amber(published: Store, make_settings) -> None:
    last = TODAY - timedelta(days=9)
    figures(published, "plausible", steady_then(POSTS, 50.0, last, drop=0.0))
    found = drop_check(published, make_settings())
    assert found.level == "amber" and found.drops == []
    assert found.stale == [f"plausible: no complete day since {last}: is its pull, or its tracking, stopped?"]
    assert engagement(published, make_settings())[0] == "amber"
