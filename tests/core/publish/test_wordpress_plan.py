"""The posting plan on the suite's real WordPress: a plan of three slots fills the next 24 hours with three
`future` posts at the right UTC times, a run an hour later (a test clock) adds nothing, a halt takes them back
to draft and the run after `publish resume` schedules them again, no post made twice; the SEO plugin's title
and description fields are sent where the site has them; a slot WP-Cron missed (the suite's site never runs
WP-Cron: DISABLE_WP_CRON) is found by `publish watch`, reported or published by setting, and counted in
`report kpi`. That last test waits for a real slot to pass (under 140 s): WordPress keeps its own clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cli.main import main
from content_pipeline.publish import window
from tests.conftest import make_item
from tests.support.fault_proxy import FaultProxy
from tests.support.helpers import cli, generated_store, operator_shell

pytestmark = [pytest.mark.wordpress, pytest.mark.slow]
ITEMS = 4
BERLIN = ZoneInfo("Europe/Berlin")
SEO_PLUGIN = """<?php
// As an SEO plugin's REST companion does: Yoast SEO's title and description post meta, writable over REST.
add_action('init', function () {
    foreach (['_yoast_wpseo_title', '_yoast_wpseo_metadesc'] as $key) {
        register_post_meta('post', $key, [
            'type' => 'string', 'single' => true, 'show_in_rest' => true,
            'auth_callback' => function ($allowed, $meta_key, $post_id) { return current_user_can('edit_post', $post_id); },
        ]);
    }
});
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rows = [make_item(n) for n in range(1, ITEMS + 1)]
    return generated_store(tmp_path_factory.mktemp("wp-plan"), rows)


@pytest.fixture
def shell(generated: tuple[Path, Path], tmp_path: Path, wp: Any, proxy: FaultProxy) -> dict[str, str]:
    return operator_shell(generated, tmp_path, wp, proxy.url)


@pytest.fixture
def seo_plugin(wp: Any) -> Iterator[None]:
    installed = wp.site / "wp-content" / "mu-plugins" / "seo-fields.php"
    installed.write_text(SEO_PLUGIN)
    try:
        yield
    finally:
        installed.unlink()


def wp_time(slot: datetime) -> str:
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def scheduled(wp: Any) -> dict[str, str]:
    """date_gmt of every `future` post, by slug."""
    return {p["slug"]: p["date_gmt"] for p in wp.posts() if p["status"] == "future"}


def test_three_slots_fill_the_next_24_hours_with_future_posts(
    wp: Any, shell: dict[str, str], seo_plugin, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    slots = [now + timedelta(hours=h) for h in (2, 6, 10)]
    plan = ",".join(sorted(f"{s.astimezone(BERLIN):%H:%M}" for s in slots)) + " Europe/Berlin"
    for name, value in {**shell, "PUBLISH_PLAN": plan}.items():
        monkeypatch.setenv(name, value)
    moment = [now]
    monkeypatch.setattr(window, "now", lambda: moment[0])

    assert main(["publish"]) == 0
    out = capsys.readouterr().out
    assert "3 planned: 3 created;" in out and "1 waiting for a slot of the posting plan" in out, out
    assert sorted(scheduled(wp).values()) == [wp_time(s) for s in slots]  # at the right UTC times
    for post in wp.posts():  # the SEO plugin's fields, sent because the site has them
        assert post["meta"]["_yoast_wpseo_title"] == post["title"]["raw"]
        assert post["meta"]["_yoast_wpseo_metadesc"] and "<" not in post["meta"]["_yoast_wpseo_metadesc"]

    moment[0] = now + timedelta(hours=1)
    assert main(["publish"]) == 0
    assert "0 planned: nothing sent; 3 already live" in capsys.readouterr().out
    assert len(wp.posts()) == 3 and len(scheduled(wp)) == 3
    main(["health"])
    out = capsys.readouterr().out
    assert "GREEN  queue" in out and "3 of the next 24 h's 3 slot(s)" in out, out

    assert main(["publish", "halt", "--reason", "incident 7: wrong prices"]) == 0
    out = capsys.readouterr().out
    assert out.count("back to draft (publishing halted: unscheduled)") == 3, out
    assert scheduled(wp) == {} and {p["status"] for p in wp.posts()} == {"draft"}  # WP-Cron publishes none
    assert main(["publish", "resume"]) == 0
    assert main(["publish"]) == 0
    assert "3 planned: 3 updated;" in capsys.readouterr().out
    assert sorted(scheduled(wp).values()) == [wp_time(s) for s in slots] and len(wp.posts()) == 3


def test_without_the_seo_fields_on_the_site_none_are_sent(wp: Any, shell: dict[str, str]) -> None:
    done = cli(shell, "publish")
    assert done.returncode == 0, done.stderr
    assert all(not any(k.startswith("_yoast") for k in post["meta"]) for post in wp.posts())
    assert {p["status"] for p in wp.posts()} == {"publish"}  # no plan: out at once, as WP_STATUS says


def test_a_slot_wp_cron_missed_is_published_by_the_watchdog_and_counted(wp: Any, shell: dict[str, str]) -> None:
    # 75 to 135 s ahead: WordPress publishes at once a post scheduled less than a minute ahead
    slot = (datetime.now(UTC) + timedelta(seconds=135)).replace(second=0, microsecond=0)
    env = {**shell, "PUBLISH_PLAN": f"{slot:%H:%M} UTC", "PUBLISH_MISSED_GRACE_MIN": "0"}
    done = cli(env, "publish")
    assert done.returncode == 0 and "1 planned: 1 created;" in done.stdout, done.stdout + done.stderr
    assert list(scheduled(wp).values()) == [wp_time(slot)], [
        (p["status"], p["date_gmt"], p["slug"]) for p in wp.posts()
    ]
    early = cli(env, "publish", "watch")
    assert early.returncode == 0 and "missed" not in early.stdout, early.stdout

    time.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()) + 3)
    assert len(scheduled(wp)) == 1  # still `future` past its time: nothing ran WP-Cron

    reported = cli(env, "publish", "watch", PUBLISH_MISSED="report")
    assert reported.returncode == 1, reported.stdout + reported.stderr  # the failure automation announces it
    assert "1 missed: still scheduled" in reported.stdout and "(WP-Cron did not run): PUBLISH_MISSED=report" in (
        reported.stdout
    )
    assert len(scheduled(wp)) == 1

    published = cli(env, "publish", "watch")
    assert published.returncode == 0, published.stdout + published.stderr
    assert "schedule: 1 missed: published by the watchdog" in published.stdout
    [post] = wp.posts()
    assert post["status"] == "publish" and post["date_gmt"] == wp_time(slot)  # live, dated at its slot
    settled = cli(env, "publish", "watch")
    assert "missed" not in settled.stdout  # looked at once: not published or counted again

    report = cli(env, "report", "kpi")
    assert report.returncode == 0, report.stderr
    assert "missed schedules: 1 (1 published by the watchdog, 0 reported)" in report.stdout
