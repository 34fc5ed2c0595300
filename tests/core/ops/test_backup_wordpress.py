"""A lost store brought back from two backups, against the session's real WordPress, from the command line as
an operator runs it: posts published, some taken down, one released, a halt set, backups taken before and
after some of those events; the store deleted and restored from both: the site ends as the operator left
it, the halt still holds, and nothing is created twice or sent again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_item
from tests.support.helpers import generated_store, operator_shell

pytestmark = [pytest.mark.wordpress, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
ITEMS = 4
LIVE = {"ALLOW_AUTONOMOUS_PUBLISH": "true", "PUBLISH_APPROVAL_GRANTED": "yes", "GOVERNANCE_APPROVED": "1"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rows = [make_item(n, tags=["widgets"]) for n in range(1, ITEMS + 1)]
    return generated_store(tmp_path_factory.mktemp("backup-wp-content"), rows)


@pytest.fixture
def shell(generated: tuple[Path, Path], tmp_path: Path, wp: Any) -> dict[str, str]:
    return operator_shell(generated, tmp_path, wp, wp.url)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def site(wp: Any) -> dict[str, list[tuple[int, str, str]]]:
    """Every post on the site by slug, any status and trash: (id, status, last modified)."""
    found: dict[str, list[tuple[int, str, str]]] = {}
    for post in wp.posts() + wp.posts(status="trash"):
        slug = post["slug"].removesuffix("__trashed")
        found.setdefault(slug, []).append((post["id"], post["status"], post["modified_gmt"]))
    return found


@pytest.mark.parametrize(
    ("where", "order"),
    [("folder", "older-first"), ("folder", "newer-first"), pytest.param("s3", "newer-first", marks=pytest.mark.s3)],
)
def test_a_store_restored_from_two_backups_leaves_the_site_as_the_operator_left_it(
    wp: Any, shell: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest, where: str, order: str
) -> None:
    base = str(tmp_path / "backup") if where == "folder" else request.getfixturevalue("s3_url")
    if where == "s3":
        shell = {**shell, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
    older, newer = f"{base}-older", f"{base}-newer"
    assert f"publish: {ITEMS} planned: {ITEMS} created" in cli(shell, "publish").stdout
    cli(shell, "quarantine", "item-0002", "--reason", "wrong price")  # turned to draft
    assert "its record not signed" in cli(shell, "backup", "--to", older).stdout  # before the events below
    cli(shell, "quarantine", "item-0003", "--reason", "recall", "--trash")
    cli(shell, "quarantine", "release", "item-0002")
    assert "1 planned: 1 updated" in cli(shell, "publish").stdout  # item-0002 back live
    cli(shell, "publish", "halt", "--reason", "incident 7")
    cli(shell, "backup", "--to", newer)
    left = site(wp)
    assert {slug: [s for _, s, _ in posts] for slug, posts in left.items()} == {
        "item-0001": ["publish"],
        "item-0002": ["publish"],
        "item-0003": ["trash"],
        "item-0004": ["publish"],
    }

    shutil.rmtree(shell["STORE_URL"])  # the store is lost
    for target in (older, newer) if order == "older-first" else (newer, older):
        restored = cli(shell, "restore", "--from-backup", target)
        assert restored.stdout.startswith("restore: brought back ") and "audit green" in restored.stdout

    listed = cli(shell, "quarantine").stdout
    assert "item-0003 held from publishing" in listed and "item-0002 held" not in listed
    held = cli(shell, "publish").stdout
    assert "simulated: publishing is halted (incident 7" in held and site(wp) == left  # the halt holds
    assert cli(shell, "publish", "resume").stdout == "publish: resumed\n"
    again = cli(shell, "publish").stdout
    assert "0 planned: nothing sent; 3 already live, 1 quarantined held back" in again, again
    assert site(wp) == left  # nothing created twice, nothing sent again, the taken-down post still down
