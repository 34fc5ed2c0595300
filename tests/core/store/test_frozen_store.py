"""An S3 endpoint that accepts connections and never answers: health and every command end within 30 s with
one line naming the store, and a non-zero exit (no hang, no traceback)."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cli_helpers import CLI, base_env

pytestmark = [pytest.mark.slow]

BOUND_S = 30.0  # the bound on any command against a frozen store
COMMANDS = [
    ["health"],
    ["status"],
    ["progress"],
    ["go-live"],
    ["collect"],
    ["publish"],
    ["audit"],
    ["consolidate"],
    ["sweep"],
    ["restore"],
    ["backup", "--to", "BACKUP"],
    ["report", "kpi"],
    ["templates"],
    ["template-rank"],
    ["quarantine"],
    ["view", "successes"],
    ["replay-failed", "--since-hours", "24"],
]


@pytest.fixture
def frozen_endpoint() -> Iterator[str]:
    """A TCP server that accepts every connection, reads nothing and answers nothing."""
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:  # closed at teardown
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("store_is", ["the store", "the backup target"])
def test_every_command_ends_within_30_s_naming_the_frozen_store(
    frozen_endpoint: str, tmp_path: Path, store_is: str
) -> None:
    env = {**base_env(tmp_path), "CONTENT_PIPELINE_ENV_FILE": "", "RUN_MODE": "direct"}
    env |= {"AWS_ENDPOINT_URL": frozen_endpoint, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    env |= {"AWS_REGION": "us-east-1"}
    if store_is == "the store":
        env["STORE_URL"], commands, backup = "s3://frozen/cp", COMMANDS, str(tmp_path / "backup")
    else:  # the store answers (a folder); only the backup target is frozen
        env["STORE_URL"], commands, backup = str(tmp_path / "store"), [["backup", "--to", "BACKUP"]], "s3://frozen/bk"
    store = env["STORE_URL"] if store_is == "the store" else backup

    def run(args: list[str]) -> tuple[list[str], int, str]:
        argv = [*CLI, *[backup if a == "BACKUP" else a for a in args]]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=BOUND_S)  # a hang fails here
        return args, done.returncode, done.stdout + done.stderr

    with ThreadPoolExecutor(max_workers=6) as pool:
        for args, code, output in pool.map(run, commands):
            assert code != 0, (args, output)
            assert f"store {store}: the S3 endpoint did not answer within 10 s" in output, (args, output)
            assert "Traceback" not in output, (args, output)
