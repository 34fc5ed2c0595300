"""The CLI's choice of front door: whether a Prefect API is configured, read without importing Prefect,
agrees with what Prefect itself resolves from the environment, `.env`, profiles and its toml files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.prefect_api import configured_api_url

URL = "http://10.0.0.9:4200/api"
PROFILE = f"""active = "team"

[profiles.team]
PREFECT_API_URL = "{URL}"

[profiles.solo]
PREFECT_LOGGING_LEVEL = "INFO"
"""


def _home_profile(tmp: Path, env: dict[str, str]) -> None:
    (Path(env["PREFECT_HOME"]) / "profiles.toml").write_text(PROFILE)


CASES: dict[str, tuple[Callable[[Path, dict[str, str]], None], str | None]] = {
    "nothing configured": (lambda tmp, env: None, None),
    "environment": (lambda tmp, env: env.update(PREFECT_API_URL=URL), URL),
    ".env in the working directory": (lambda tmp, env: (tmp / ".env").write_text(f"PREFECT_API_URL={URL}\n"), URL),
    "active profile": (_home_profile, URL),
    "PREFECT_PROFILE picks a profile without one": (
        lambda tmp, env: (_home_profile(tmp, env), env.update(PREFECT_PROFILE="solo")),
        None,
    ),
    "prefect.toml": (lambda tmp, env: (tmp / "prefect.toml").write_text(f'[api]\nurl = "{URL}"\n'), URL),
    "pyproject.toml": (
        lambda tmp, env: (tmp / "pyproject.toml").write_text(f'[tool.prefect.api]\nurl = "{URL}"\n'),
        URL,
    ),
}


@pytest.mark.slow  # runs the command line as processes
@pytest.mark.parametrize("case", list(CASES))
def test_the_configured_api_is_the_one_prefect_would_use(case: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    Path(env["PREFECT_HOME"]).mkdir()
    work = tmp_path / "work"
    work.mkdir()
    setup, want = CASES[case]
    setup(work, env)
    ours = configured_api_url(env, work)
    prefects = subprocess.run(
        [sys.executable, "-c", "from prefect.settings import get_current_settings as s; print(s().api.url)"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert prefects.returncode == 0, prefects.stderr[-2000:]
    theirs = prefects.stdout.strip()
    assert ours == want and (theirs if theirs != "None" else None) == want
