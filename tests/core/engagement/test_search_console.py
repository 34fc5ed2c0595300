"""The Search Console source against a loopback server speaking the Search Console API and Google's OAuth token
endpoint (no Google account is reachable here, so content_pipeline/rehearsal/search_console.py is a double of
the documented wire format, the service account's signature checked): figures per post and day, paged; days
from the first incomplete date are not final; a key the endpoint refuses is one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from content_pipeline.engagement.search_console import SearchConsoleSource
from content_pipeline.engagement.source import EngagementSourceError
from content_pipeline.rehearsal.search_console import SearchConsoleRehearsal, SearchConsoleSite, service_account

SITE = "https://shop.example/"
EMAIL = "pipeline@shop-example.iam.gserviceaccount.com"
TODAY = datetime.now(UTC).date()
PATHS = {f"/item-{n}/": f"item-{n:04d}" for n in range(4)}


def served() -> tuple[SearchConsoleSite, dict[str, str]]:
    info, public = service_account(EMAIL, "")
    pages = {}
    for n in range(4):
        for back in range(5):
            day = (TODAY - timedelta(days=back)).isoformat()
            pages[(f"https://shop.example/item-{n}/", day)] = {
                "clicks": n + back,
                "impressions": 100.0,
                "position": 3.5,
            }
    pages[("https://shop.example/about/", TODAY.isoformat())] = {"clicks": 50.0, "impressions": 60.0}
    incomplete = (TODAY - timedelta(days=2)).isoformat()
    return SearchConsoleSite(SITE, EMAIL, public, pages, first_incomplete=incomplete), info


def test_a_pull_brings_each_posts_figures_and_marks_the_days_google_has_not_settled() -> None:
    site, info = served()
    with SearchConsoleRehearsal(site) as url:
        source = SearchConsoleSource(SITE, {**info, "token_uri": f"{url}/token"}, api_base=url, row_limit=7)
        days = source.pull(PATHS, TODAY - timedelta(days=4), TODAY)
    assert len(days) == 20 and len(site.requests) == 4  # 21 rows, 7 to a page; the about page is not ours
    found = {(d.slug, d.day): d for d in days}
    settled = found[("item-0002", TODAY - timedelta(days=3))]
    assert settled.metrics == {"clicks": 5.0, "impressions": 100.0, "position": 3.5} and settled.final
    assert not found[("item-0002", TODAY - timedelta(days=2))].final  # Google may still revise it
    assert site.requests[0]["path"] == "/webmasters/v3/sites/https://shop.example//searchAnalytics/query"


def test_a_service_account_the_token_endpoint_refuses_is_one_line() -> None:
    site, _ = served()
    other, _ = service_account(EMAIL, "")  # another key under the same name: its signature does not verify
    with SearchConsoleRehearsal(site) as url, pytest.raises(EngagementSourceError) as refused:
        SearchConsoleSource(SITE, {**other, "token_uri": f"{url}/token"}, api_base=url).pull(PATHS, TODAY, TODAY)
    assert (
        str(refused.value) == f"search-console: the service account {EMAIL} was refused a token: Invalid JWT Signature."
    )
    assert "PRIVATE KEY" not in str(refused.value)


def test_a_bad_request_is_one_line_with_googles_reason() -> None:
    site, info = served()
    with SearchConsoleRehearsal(site) as url, pytest.raises(EngagementSourceError) as bad:
        source = SearchConsoleSource(SITE, {**info, "token_uri": f"{url}/token"}, api_base=url)
        source.pull(PATHS, TODAY, TODAY - timedelta(days=3))  # a range that ends before it starts
    assert str(bad.value).startswith(f"search-console ({SITE}): 400 INVALID_ARGUMENT: Invalid dimensions or date range")


def test_a_key_file_that_is_not_one_is_refused_at_once() -> None:
    with pytest.raises(
        EngagementSourceError, match=r"^search-console: the service account key is not a Google JSON key file$"
    ):
        SearchConsoleSource(SITE, {"client_email": EMAIL, "private_key": "not a key", "token_uri": "x"})
