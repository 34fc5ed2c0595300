"""The command line run as a process, from a shell with no Prefect API configured (as an operator runs it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parents[2]


def base_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a shell with no Prefect API configured: no PREFECT_* from outside, an empty
    PREFECT_HOME (so no profile of the developer's points anywhere), no provider settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(ROOT))
    return env


def run(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The command to its end (300 s at most: past that, the test fails with where each of its threads was)."""
    command = [*CLI, *args]
    with subprocess.Popen(
        command,
        env={**env, **extra, "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # the fault handler prints every thread's stack on the way down
            out, err = proc.communicate(timeout=30)
            raise AssertionError(f"{' '.join(args)} still ran after 300 s; its threads:\n{err[-6000:]}") from None
    return subprocess.CompletedProcess(command, proc.returncode, out, err)
