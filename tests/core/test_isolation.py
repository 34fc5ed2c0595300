"""Test isolation: the suite never reads a `.env` or the shell's environment for provider or store settings.
A `.env` holding a key and a base URL pointing at a loopback trap that counts requests: zero reach it, on
the core's path and on the command's; the same file outside the suite is read (so the trap can catch)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from content_pipeline.settings import ENV_FILE_VARIABLE, load_settings
from tests.conftest import make_item
from tests.support.cli_helpers import CLI, ROOT, base_env
from tests.support.helpers import run


@pytest.fixture
def trap() -> Iterator[tuple[str, list[str]]]:
    """A loopback server that answers nothing useful and counts every request it gets."""
    hits: list[str] = []

    class Trap(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _count(self) -> None:
            hits.append(self.path)
            self.send_response(500)
            self.send_header("content-length", "0")
            self.end_headers()

        do_GET = do_POST = _count

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trap)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dotenv_dir(tmp_path: Path, trap: tuple[str, list[str]], write_catalogue) -> Path:
    """A folder whose `.env` would send every call to the trap with a paid key."""
    catalogue = write_catalogue([make_item(n) for n in range(1, 4)], "isolation.jsonl")
    (tmp_path / ".env").write_text(
        f"OPENAI_API_KEY=sk-developers-real-key\nOPENAI_BASE_URL={trap[0]}\nCATALOGUE={catalogue}\n"
    )
    return tmp_path


def test_the_suite_reads_no_dotenv_on_the_cores_path(dotenv_dir, trap, monkeypatch, make_settings) -> None:
    monkeypatch.chdir(dotenv_dir)
    settings = load_settings()
    assert settings.offline and settings.openai_base_url is None
    report = run(make_settings(), None)
    assert report.ok and report.offline and trap[1] == []


@pytest.mark.slow  # runs the command line as processes
def test_the_suite_reads_no_dotenv_on_the_commands_path(dotenv_dir, trap, tmp_path) -> None:
    env = {**base_env(tmp_path), "STORE_URL": str(tmp_path / "store"), "PYTHONPATH": str(ROOT)}
    env["CATALOGUE"] = str(dotenv_dir / "isolation.jsonl")
    done = subprocess.run(
        [*CLI, "go-live", "--limit", "3"], cwd=dotenv_dir, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "offline model" in done.stdout and trap[1] == []


def test_outside_the_suite_the_same_dotenv_is_read(dotenv_dir, trap, monkeypatch) -> None:
    monkeypatch.chdir(dotenv_dir)
    monkeypatch.delenv(ENV_FILE_VARIABLE)  # as in an operator's shell
    settings = load_settings()
    assert not settings.offline and settings.openai_base_url == trap[0]  # the trap would have been reached


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_a_budget_that_is_not_a_finite_number_is_one_line_and_exit_2_before_anything_starts(
    tmp_path, value: str
) -> None:
    env = {**base_env(tmp_path), "STORE_URL": str(tmp_path / "store"), "BUDGET_USD": value}
    done = subprocess.run([*CLI, "go-live", "--prefect"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: setting BUDGET_USD: Input should be a finite number (got '{value}')"
    assert not (tmp_path / "store").exists()  # nothing started, nothing stored
