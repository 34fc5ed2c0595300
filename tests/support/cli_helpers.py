"""The command line run as a process, from a shell with no Prefect API configured (as an operator runs it)."""

from __future__ import annotations

import os
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
    return subprocess.run([*CLI, *args], env={**env, **extra}, capture_output=True, text=True, timeout=300)
