"""What `make up` decides and prints before any server is involved: which schedules may spend, each
deployment's line, and the server log's error lines a test fails on."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.config import deployment_lines, spending_schedules_active
from devstack.stack import Stack


def test_the_schedules_that_spend_are_active_only_offline_or_when_asked() -> None:
    assert spending_schedules_active(offline=True, environ={}) is True  # the offline model costs nothing
    assert spending_schedules_active(offline=False, environ={}) is False
    assert spending_schedules_active(offline=False, environ={"SPENDING_SCHEDULES": "paused"}) is False
    assert spending_schedules_active(offline=False, environ={"SPENDING_SCHEDULES": " Active "}) is True
    with pytest.raises(SystemExit, match="SPENDING_SCHEDULES must be `active` or `paused`, not 'yes'"):
        spending_schedules_active(offline=False, environ={"SPENDING_SCHEDULES": "yes"})


def test_make_up_prints_every_deployment_and_whether_its_schedule_runs() -> None:
    lines = deployment_lines(
        [
            {"name": "go-live/ad-hoc", "schedules": [], "active": False, "spends": True},
            {"name": "go-live/production", "schedules": ["cron 0 */4 * * * UTC"], "active": False, "spends": True},
            {"name": "health/checks-hourly", "schedules": ["cron 0 * * * * UTC"], "active": True, "spends": False},
        ]
    )
    assert lines == [
        "  go-live/ad-hoc        no schedule (runs on demand)",
        "  go-live/production    schedule PAUSED: cron 0 */4 * * * UTC"
        " (it spends or posts: SPENDING_SCHEDULES=active starts it)",
        "  health/checks-hourly  schedule active: cron 0 * * * * UTC",
    ]


def test_the_server_log_s_error_lines_are_found_after_an_offset(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    log = tmp_path / "server.log"
    log.write_text("07:00:01.000 | INFO    | prefect.server - started\n")
    assert stack.server_errors() == ([], log.stat().st_size)
    _, start = stack.server_errors()
    with log.open("a") as out:
        out.write("07:00:51.846 | ERROR   | docket.dependencies - schedule_recent_deployments()\n")
        out.write("Traceback (most recent call last):\n  File 'x.py', line 1, in f\n    raise exc.X(\n")
        out.write("sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement\n")
        out.write("[SQL: UPDATE deployment SET ...]\n")
        out.write("07:00:52.000 | WARNING | prefect.server - slow\n")
    errors, end = stack.server_errors(start)
    assert errors == [
        "07:00:51.846 | ERROR   | docket.dependencies - schedule_recent_deployments() / "
        "sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement"
    ]
    assert stack.server_errors(end) == ([], end)
