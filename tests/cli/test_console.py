"""What `make run` prints, on both front doors: each invalid row named once, then the report and the status;
on a flow run, Prefect's engine lines only at LOG_LEVEL=DEBUG and nothing left for the temporary server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from content_pipeline.intake.catalogue import load_catalogue
from content_pipeline.settings import sample_catalogue
from tests.support.cli_helpers import CLI, base_env

pytestmark = [pytest.mark.slow]
ENGINE = ("Beginning flow run", "Finished in state", "Created task run", "View at ")


def make_run(tmp_path: Path, *flags: str, **env: str) -> tuple[str, str]:
    """`make run`'s two commands on the bundled sample, in a shell with no Prefect API configured."""
    shell = {**base_env(tmp_path), "STORE_URL": str(tmp_path / "data"), **env}
    out, err = [], []
    for command in (["go-live", *flags], ["status"]):
        done = subprocess.run([*CLI, *command], env=shell, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        out.append(done.stdout)
        err.append(done.stderr)
    return "".join(out), "".join(err)


def invalid_lines() -> list[str]:
    source = sample_catalogue()
    return [row.line(source) for row in load_catalogue(source).invalid]


@pytest.fixture(scope="module", params=["direct", pytest.param("flow", marks=pytest.mark.server)])
def printed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """The front door and what `make run` printed (stdout, stderr): the core directly, or a flow on a
    temporary server."""
    flags = ["--prefect"] if request.param == "flow" else []
    return (request.param, *make_run(tmp_path_factory.mktemp(request.param), *flags))


def test_each_invalid_row_is_named_once_then_the_report_and_the_status(printed: tuple[str, str, str]) -> None:
    _, out, err = printed
    rows = invalid_lines()
    assert len(rows) == 8
    for line in rows:
        assert (out + err).count(line) == 1, line
    assert "8 invalid (the report names them)" in err
    report, status = out.index("# go-live run "), out.index("\nstore ")
    assert report < out.index(rows[0]) < status
    assert "Traceback" not in err


def test_no_engine_lines_and_nothing_left_for_a_stopped_server(printed: tuple[str, str, str]) -> None:
    _, _, err = printed
    assert [line for line in err.splitlines() if any(e in line for e in ENGINE)] == []
    assert "Error logging to API" not in err and "All connection attempts failed" not in err
    assert "audit: all invariants hold" in err  # the run's own lines are still there


@pytest.mark.server
def test_log_level_debug_shows_the_engine_lines(tmp_path: Path) -> None:
    _, err = make_run(tmp_path, "--prefect", LOG_LEVEL="DEBUG")
    assert "Finished in state Completed" in err and "Beginning flow run" in err
