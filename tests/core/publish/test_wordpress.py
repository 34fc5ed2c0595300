"""Publishing to a real WordPress 6.1 on loopback (the session's, tests/support/wordpress.py), from the command line
as an operator runs it: each post once with its categories and tags, a missing category falling back; a
SIGKILL after the POST reached WordPress, a dropped answer and a replay leave no duplicate; a changed item
updates its post; a wrong password and a user who may not publish stop the run with one line. Faults the
server cannot make on demand come from a loopback proxy in front of it (tests/support/fault_proxy.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.publish.history import read_history
from content_pipeline.store import open_store
from tests.conftest import make_item
from tests.support.fault_proxy import FaultProxy
from tests.support.helpers import (
    LIVE,
    POSTS,
    cli,
    generated_store,
    operator_shell,
    publish_killed_after_the_first_create,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.slow]
ITEMS = 4


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rows = [make_item(n, tags=["widgets", f"size-{n % 2}"]) for n in range(1, ITEMS + 1)]
    return generated_store(tmp_path_factory.mktemp("wp-content"), rows)


@pytest.fixture
def shell(generated: tuple[Path, Path], tmp_path: Path, wp: Any, proxy: FaultProxy) -> dict[str, str]:
    return operator_shell(generated, tmp_path, wp, proxy.url)


def by_slug(wp: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for post in wp.posts():
        found.setdefault(post["slug"], []).append(post)
    return found


def slugs() -> list[str]:
    return [f"item-{n:04d}" for n in range(1, ITEMS + 1)]


def assert_each_item_posted_once(wp: Any) -> None:
    """Listed from WordPress by slug, any status: every item has exactly one post."""
    posts = by_slug(wp)
    assert sorted(posts) == slugs() and all(len(p) == 1 for p in posts.values()), {k: len(v) for k, v in posts.items()}


def test_live_publishing_creates_each_post_once_with_its_categories_and_tags(wp: Any, shell) -> None:
    done = cli(shell, "publish")
    assert done.returncode == 0, done.stderr
    assert f"publish: {ITEMS} planned: {ITEMS} created;" in done.stdout
    assert_each_item_posted_once(wp)
    posts = by_slug(wp)
    categories = {c["id"]: c["name"] for c in wp.categories()}
    tags = {t["id"]: t["name"] for t in wp.tags()}
    for n, slug in enumerate(slugs(), start=1):
        [post] = posts[slug]
        assert post["status"] == "publish" and post["content"]["raw"].startswith("<p>")
        assert [categories[i] for i in post["categories"]] == [make_item(n)["category"]]
        assert sorted(tags[i] for i in post["tags"]) == sorted(["widgets", f"size-{n % 2}"])
    again = cli(shell, "publish")
    assert again.returncode == 0 and f"{ITEMS} already live" in again.stdout
    assert sum(len(p) for p in by_slug(wp).values()) == ITEMS
    secret = wp.users["editor1"].encode()
    stored = [p for p in Path(shell["STORE_URL"]).rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert stored == [] and secret.decode() not in done.stdout + done.stderr + again.stdout + again.stderr


def test_a_category_the_user_may_not_create_falls_back(wp: Any, shell) -> None:
    wp.create_category("Kitchen")  # one category exists; the others may not be created by an author
    done = cli(shell, "publish", WP_USER="author1", WP_APP_PASSWORD=wp.users["author1"])
    assert done.returncode == 0, done.stderr
    categories = {c["id"]: c["name"] for c in wp.categories()}
    tags = {t["id"]: t["name"] for t in wp.tags()}
    for n, slug in enumerate(slugs(), start=1):
        [post] = by_slug(wp)[slug]
        own = make_item(n)["category"]
        assert [categories[i] for i in post["categories"]] == [own if own == "Kitchen" else "Uncategorized"]
        assert sorted(tags[i] for i in post["tags"]) == sorted(["widgets", f"size-{n % 2}"])  # an author may
    assert sorted(categories.values()) == ["Kitchen", "Uncategorized"]
    assert done.stdout.count("missing and user 'author1' may not create it: filed under Uncategorized") == ITEMS - 1


def test_a_sigkill_after_the_post_reached_wordpress_then_a_rerun_makes_no_duplicate(wp: Any, shell, proxy) -> None:
    publish_killed_after_the_first_create(shell, proxy)
    assert len(wp.posts()) == 1  # the first create reached WordPress
    store = open_store(shell["STORE_URL"])
    assert len(read_history(store).pending) == 1  # its intent was recorded, its outcome never
    rerun = cli(shell, "publish")
    assert rerun.returncode == 0, rerun.stderr
    assert "found on the target with this content (an earlier attempt's post): not sent again" in rerun.stdout
    assert_each_item_posted_once(wp)


def test_a_dropped_answer_then_a_replay_makes_no_duplicate(wp: Any, shell, proxy) -> None:
    proxy.add(method="POST", path=POSTS, kind="drop-after")
    first = cli(shell, "publish", PUBLISH_MAX_RETRIES="0")
    assert first.returncode == 1 and "connection failed" in first.stdout
    assert len(by_slug(wp)) == ITEMS  # the dropped one was created all the same
    replay = cli(shell, "replay-failed", "--since-hours", "1")
    assert replay.returncode == 0, replay.stderr
    assert "publish: 1 planned: 1 unchanged" in replay.stdout  # found by its marker: not sent again
    assert_each_item_posted_once(wp)


def test_429_and_500_back_off_and_retry(wp: Any, shell, proxy) -> None:
    proxy.add(method="POST", path=POSTS, kind="429")
    proxy.add(method="POST", path=POSTS, kind="500")
    done = cli(shell, "publish")
    assert done.returncode == 0, done.stderr
    outcomes = read_history(open_store(shell["STORE_URL"])).outcomes()
    assert [e["retries"] for e in outcomes] == [2] + [0] * (ITEMS - 1)  # the first post, after a 429 and a 500
    assert all(e["result"] == "created" for e in outcomes)
    assert [f for _, _, f in proxy.requests if f in ("429", "500")] == ["429", "500"]
    assert sorted(by_slug(wp)) == slugs()


def test_a_changed_item_updates_its_post(wp: Any, shell) -> None:
    assert cli(shell, "publish").returncode == 0
    [before] = by_slug(wp)["item-0002"]
    catalogue = Path(shell["CATALOGUE"])
    rows = [json.loads(line) for line in catalogue.read_text().splitlines()]
    rows[1]["tags"] = ["widgets", "clearance"]
    catalogue.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = cli(shell, "publish")
    assert done.returncode == 0 and "publish: 1 planned: 1 updated" in done.stdout
    [after] = by_slug(wp)["item-0002"]
    tags = {t["id"]: t["name"] for t in wp.tags()}
    assert after["id"] == before["id"] and sorted(tags[i] for i in after["tags"]) == ["clearance", "widgets"]


def test_a_wrong_application_password_stops_the_run_with_one_line(wp: Any, shell) -> None:
    done = cli(shell, "publish", WP_APP_PASSWORD="abcd efgh ijkl mnop qrst uvwx")
    assert done.returncode == 1 and wp.posts() == []
    [line] = done.stderr.splitlines()
    assert line.startswith("publish stopped: WordPress wordpress (") and "401 Unauthorized" in line
    assert "'editor1' was refused" in line and "abcd" not in done.stdout + done.stderr


def test_a_user_who_may_not_publish_gets_one_line_naming_the_403(wp: Any, shell) -> None:
    done = cli(shell, "publish", WP_USER="contributor1", WP_APP_PASSWORD=wp.users["contributor1"])
    assert done.returncode == 1 and wp.posts() == []
    [line] = done.stderr.splitlines()
    assert "403 Forbidden: user 'contributor1' may not publish posts (rest_cannot_publish)" in line


@pytest.mark.parametrize(
    "missing", [("ALLOW_AUTONOMOUS_PUBLISH",), ("GOVERNANCE_APPROVED", "PUBLISH_APPROVAL_GRANTED"), tuple(LIVE)]
)
def test_without_every_signal_nothing_reaches_wordpress(wp: Any, shell, proxy, missing: tuple[str, ...]) -> None:
    env = {k: v for k, v in shell.items() if k not in missing}
    done = cli({**env, **dict.fromkeys(missing[:1], "on")}, "publish")
    assert done.returncode == 0 and f"{ITEMS} simulated" in done.stdout
    assert proxy.requests == [] and wp.posts() == []


def test_halt_on_one_worker_and_quarantine_hold_on_another(wp: Any, shell) -> None:
    halted = cli(shell, "publish", "halt", "--reason", "incident 12")
    assert halted.returncode == 0 and "halted everywhere: incident 12" in halted.stdout
    held = cli(shell, "publish")  # another process: the switch is in the store
    assert "simulated: publishing is halted (incident 12" in held.stdout and wp.posts() == []
    assert cli(shell, "publish", "resume").stdout == "publish: resumed\n"
    assert cli(shell, "publish").returncode == 0 and len(wp.posts()) == ITEMS
    down = cli(shell, "quarantine", "item-0003", "--reason", "wrong price")
    assert down.returncode == 0 and down.stdout.endswith("turned to draft\n")
    assert by_slug(wp)["item-0003"][0]["status"] == "draft"
    trashed = cli(shell, "quarantine", "item-0004", "--reason", "recall", "--trash")
    assert trashed.returncode == 0 and "item-0004" not in by_slug(wp)  # trashed: out of the any-status list
    listed = cli(shell, "quarantine")
    assert "item-0003 held from publishing" in listed.stdout and "item-0004 held from publishing" in listed.stdout
    assert cli(shell, "publish").stdout.count("2 quarantined held back") == 1
    assert cli(shell, "quarantine", "release", "item-0003").returncode == 0
    back = cli(shell, "publish")
    assert "1 planned: 1 updated" in back.stdout and by_slug(wp)["item-0003"][0]["status"] == "publish"
    assert len(by_slug(wp)["item-0003"]) == 1
