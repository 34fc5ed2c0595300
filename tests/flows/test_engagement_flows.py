"""The engagement flows on the session's Prefect server: a pull from a PlausibleSite block named in the form (the
Plausible rehearsal server stands in for plausible.io, which this machine cannot reach: see
rehearsal/plausible.py), its figures logged under the block's name and its key in no log line; a source nobody
configured fails the run with one line; the drop check fails its run on a planted drop."""

from __future__ import annotations

from datetime import timedelta

import pytest

from content_pipeline.engagement.log import read_log
from content_pipeline.rehearsal.plausible import PlausibleRehearsal, PlausibleSite
from content_pipeline.store import open_store
from flows import pipeline
from tests.support.engagement import TODAY, figures, publish_on, steady_then, written_by
from tests.support.helpers import run_logs

pytestmark = pytest.mark.server
KEY = "plausible-stats-key-5309"
POSTS = [f"item-{n:04d}" for n in range(1, 4)]


@pytest.fixture
def env(prefect_server, monkeypatch, store_url):
    monkeypatch.setenv("STORE_URL", store_url)
    store = open_store(store_url)
    publish_on(store, {slug: TODAY - timedelta(days=10) for slug in POSTS}, categories=dict.fromkeys(POSTS, "Travel"))
    written_by(store, dict.fromkeys(POSTS, "catalogue-item:1"))
    return store


def test_a_pull_from_a_block_named_in_the_form_logs_under_its_name(env) -> None:
    from blocks import PlausibleSite as PlausibleBlock

    yesterday = (TODAY - timedelta(days=1)).isoformat()
    pages = {(f"/{slug}/", yesterday): {"visitors": 40.0, "pageviews": 55.0} for slug in POSTS}
    with PlausibleRehearsal(PlausibleSite("shop.example", KEY, pages)) as url:
        PlausibleBlock(url=url, site_id="shop.example", api_key=KEY).save("shop-analytics", overwrite=True)
        state = pipeline.engagement_pull_flow(since_days=3, sources="shop-analytics", return_state=True)
    assert state.is_completed(), state.message
    assert state.message == "engagement pull: shop-analytics: 3 new post-day(s), 0 revised, 0 unchanged"
    days = read_log(env).days()
    assert {(d.source, d.slug, d.metrics["visitors"]) for d in days} == {("shop-analytics", s, 40.0) for s in POSTS}
    logs = [message for _, message in run_logs(state)]
    assert any("shop-analytics: 3 new post-day(s)" in line for line in logs)
    assert not any(KEY in line for line in logs)


def test_a_source_nobody_configured_fails_the_run_with_one_line(env) -> None:
    state = pipeline.engagement_pull_flow(since_days=3, sources="old-site", return_state=True)
    assert state.is_failed()
    assert state.message == (
        "engagement pull: engagement source 'old-site': no PlausibleSite or SearchConsoleProperty block by that name"
    )


def test_the_drop_check_fails_its_run_on_a_planted_drop(env) -> None:
    figures(env, "plausible", steady_then(POSTS, 40.0, TODAY - timedelta(days=1), drop=0.4))
    state = pipeline.engagement_drops_flow(return_state=True)
    assert state.is_failed()
    assert state.message.startswith("engagement red: down past 30%: plausible visitors of all posts on "), state.message
    assert any(line.startswith("engagement: down past 30%") for _, line in run_logs(state))
