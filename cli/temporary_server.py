"""A Prefect server for one `--prefect` CLI run when none is configured: on a free loopback port, tied to
this process so it dies with it (even by SIGKILL, which Prefect's own temporary server outlives), and
stopped when the run ends."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.ports import free_port

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """In the child before it runs the server: SIGKILL it when its parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the death signal was set
        os._exit(1)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def drain_to_api(timeout_s: float = 15.0) -> None:
    """Send what Prefect's log and event workers still hold, before the server goes: else each retries
    against a stopped server for over a minute and prints an error at exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout_s)


@contextmanager
def temporary_server(timeout_s: float = 120.0) -> Iterator[str]:
    """Start `prefect server start` (no UI) and yield its API URL once it answers; stop it at the end."""
    port = str(free_port())
    url = f"http://127.0.0.1:{port}/api"
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = {**os.environ, "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    parent = os.getpid()
    print(f"starting a temporary Prefect server on {url} for this run", file=sys.stderr, flush=True)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below; a file, so a chatty server never blocks on a pipe
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", port, "--no-ui"],
        env=env,
        stdout=log,
        stderr=log,
        preexec_fn=lambda: _die_with(parent),  # only sets the death signal
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(url):
            if proc.poll() is not None:
                log.seek(0)
                last = (log.read().decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1]
                raise SystemExit(f"error: the temporary Prefect server exited: {last}")
            if time.monotonic() > deadline:
                raise SystemExit(f"error: the temporary Prefect server did not answer within {timeout_s:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
