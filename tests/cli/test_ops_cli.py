"""The operations as an operator runs them from a shell: health's exit codes, restore, backup, report,
templates, each bad input one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from content_pipeline.claims.queue import claim
from content_pipeline.store import open_store
from tests.conftest import make_item
from tests.support.cli_helpers import base_env
from tests.support.cli_helpers import run as cli
from tests.support.helpers import dead_pid

pytestmark = [pytest.mark.slow]


@pytest.fixture
def env(tmp_path: Path, write_catalogue) -> dict[str, str]:
    env = {**base_env(tmp_path), "STORE_URL": str(tmp_path / "store")}
    env["CATALOGUE"] = write_catalogue([make_item(n) for n in range(1, 21)])
    assert cli(env, "go-live").returncode == 0
    return env


def test_health_exits_0_green_and_2_red_naming_the_fault(env) -> None:
    green = cli(env, "health")
    assert green.returncode == 0 and green.stdout.splitlines()[-1] == "health: green", green.stdout
    claim(open_store(env["STORE_URL"]), "crashed", ["item-0001"], 1, dead_pid(), 3600)
    red = cli(env, "health", "--json")
    assert red.returncode == 2
    checks = {c["name"]: c for c in json.loads(red.stdout)["checks"]}
    assert checks["claims"]["level"] == "red" and checks["claims"]["detail"].startswith("1 stale claim(s) of 1 gone")
    assert cli(env, "sweep").returncode == 0 and cli(env, "health").returncode == 0


def test_restore_backup_and_report_from_the_command_line(env, tmp_path: Path) -> None:
    dry = cli(env, "restore", "--dry-run")
    assert dry.returncode == 0 and dry.stdout == "restore --dry-run: nothing to restore: the views match the ledger\n"
    done = cli(env, "restore")
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "restore: audit green"
    backup = cli(env, "backup", "--to", str(tmp_path / "backup"))
    assert backup.returncode == 0 and " object(s) copied (" in backup.stdout and ", 0 unchanged, to " in backup.stdout
    listed = [json.loads(line) for line in cli(env, "backup", "--list").stdout.splitlines()]
    assert [b["to"] for b in listed] == [str(tmp_path / "backup")]
    report = cli(env, "report", "kpi", "--period", "weekly")
    assert report.returncode == 0 and "items_attempted       20" in report.stdout and "with its charts" in report.stdout
    assert cli(env, "restore", "--list").stdout == "restore: no view snapshot is kept\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["restore", "--from", "nope"], "error: restore --from nope: no such kept snapshot (kept: none)"),
        (["templates", "--add", "/nowhere.json"], "error: templates --add /nowhere.json: No such file or directory"),
        (["backup", "--to", "s3://"], "error: STORE_URL 's3://': no bucket; use s3://bucket/prefix"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(env, args: list[str], line: str) -> None:
    result = cli(env, *args)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [line], result.stderr
