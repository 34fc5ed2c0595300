"""The Plausible source against a loopback server speaking Plausible Stats API v2 (no analytics server can be
installed here, so content_pipeline/rehearsal/plausible.py is a double of the documented wire format, request
checks included): figures per post and day, paged; a refused key, a malformed query and a rate limit each end
in one line that never shows the key; a throttled pull backs off and completes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx2
import pytest

from content_pipeline.engagement.plausible import PlausibleSource
from content_pipeline.engagement.source import EngagementSourceError
from content_pipeline.rehearsal.plausible import PlausibleRehearsal, PlausibleSite

KEY = "plausible-key-7f3a9c"
TODAY = datetime.now(UTC).date()


def site(**extra) -> PlausibleSite:
    pages = {}
    for n in range(5):
        for back in range(3):
            day = (TODAY - timedelta(days=back)).isoformat()
            pages[(f"/item-{n}/", day)] = {"visitors": 10.0 * n + back, "pageviews": 12.0 * n, "time_on_page": 30.0}
    pages[("/not-ours/", TODAY.isoformat())] = {"visitors": 999.0, "pageviews": 999.0}
    return PlausibleSite(site_id="shop.example", key=KEY, pages=pages, retry_after_s=0.05, **extra)


PATHS = {f"/item-{n}/": f"item-{n:04d}" for n in range(5)}


def test_a_pull_brings_each_posts_figures_per_day_across_pages() -> None:
    served = site()
    with PlausibleRehearsal(served) as url:
        days = PlausibleSource(url, KEY, "shop.example", page_size=4).pull(PATHS, TODAY - timedelta(days=2), TODAY)
    assert len(days) == 15 and len(served.requests) == 4  # 15 rows, 4 to a page
    found = {(d.slug, d.day): d for d in days}
    yesterday = found[("item-0003", TODAY - timedelta(days=1))]
    assert yesterday.metrics == {"visitors": 31.0, "pageviews": 36.0, "time_on_page": 30.0} and yesterday.final
    assert not found[("item-0003", TODAY)].final  # today may still grow
    assert all(r["authorization"] == f"Bearer {KEY}" for r in served.requests)
    assert served.requests[0]["body"]["filters"] == [["is", "event:page", sorted(PATHS)]]


def test_the_rehearsal_refuses_a_malformed_query_as_the_real_api_does() -> None:
    with PlausibleRehearsal(site()) as url:
        bad = {"site_id": "shop.example", "metrics": ["likes"], "date_range": "7d"}
        answer = httpx2.post(f"{url}/api/v2/query", json=bad, headers={"Authorization": f"Bearer {KEY}"})
        no_page = {"site_id": "shop.example", "metrics": ["time_on_page"], "date_range": "7d"}
        other = httpx2.post(f"{url}/api/v2/query", json=no_page, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 400 and answer.json() == {"error": '#/metrics/0: Invalid metric "likes"'}
    assert other.status_code == 400 and "can only be queried with event:page" in other.json()["error"]


def test_a_refused_key_is_one_line_without_the_key() -> None:
    with PlausibleRehearsal(site()) as url, pytest.raises(EngagementSourceError) as refused:
        PlausibleSource(url, "wrong-key-123", "shop.example").pull(PATHS, TODAY, TODAY)
    message = str(refused.value)
    assert message == "plausible (shop.example): 401: the API key or site id was refused (the PlausibleSite block)"
    assert "wrong-key-123" not in message and "\n" not in message


def test_a_throttled_pull_backs_off_and_completes_and_a_lasting_limit_ends_in_one_line() -> None:
    served = site(throttle=2)
    with PlausibleRehearsal(served) as url:
        days = PlausibleSource(url, KEY, "shop.example", retries=3).pull(PATHS, TODAY, TODAY)
        assert len(days) == 5 and len(served.requests) == 3  # two 429s, then the answer
        served.throttle = 100
        with pytest.raises(
            EngagementSourceError, match=r"^plausible \(shop.example\): POST /api/v2/query: 429 \(after 2 retries\)$"
        ):
            PlausibleSource(url, KEY, "shop.example", retries=2).pull(PATHS, TODAY, TODAY)


def test_a_day_range_outside_the_planted_days_brings_nothing() -> None:
    served = site()
    with PlausibleRehearsal(served) as url:
        days = PlausibleSource(url, KEY, "shop.example").pull(PATHS, date(2020, 1, 1), date(2020, 1, 31))
    assert days == [] and served.requests[0]["body"]["date_range"] == ["2020-01-01", "2020-01-31"]
