"""Whether a Prefect API is configured, read from the places Prefect reads it, in its order, without
importing Prefect (which costs about 1.3 s before a run could start)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dotenv

_DEFAULT_PROFILES = "ephemeral"  # the active profile of Prefect's own profiles.toml, which sets no API URL


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _dig(data: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _profiles_path(env: Mapping[str, str], cwd: Path, dotenv_values: Mapping[str, str | None]) -> Path | None:
    """Where Prefect looks for profiles.toml; None when it would use its own default profiles."""
    if env.get("PREFECT_TESTING_UNIT_TEST_MODE") or env.get("PREFECT_TESTING_TEST_MODE"):
        return None
    found = (
        env.get("PREFECT_PROFILES_PATH")
        or dotenv_values.get("PREFECT_PROFILES_PATH")
        or _dig(_toml(cwd / "prefect.toml"), "profiles_path")
        or _dig(_toml(cwd / "pyproject.toml"), "tool", "prefect", "profiles_path")
    )
    if found:
        return Path(str(found)).expanduser()
    home = env.get("PREFECT_HOME")
    return (Path(home) if home else Path.home() / ".prefect").expanduser() / "profiles.toml"


def _profile_url(env: Mapping[str, str], path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    profiles = _toml(path)
    active = env.get("PREFECT_PROFILE") or profiles.get("active") or _DEFAULT_PROFILES
    return _dig(profiles, "profiles", str(active), "PREFECT_API_URL")


def configured_api_url(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """The Prefect API URL this process would use: the environment, `.env`, the active profile,
    `prefect.toml`, `pyproject.toml` ([tool.prefect]); None when none sets one (Prefect would start a
    temporary server)."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    dotenv_values = dotenv.dotenv_values(cwd / ".env") if (cwd / ".env").is_file() else {}
    for value in (
        env.get("PREFECT_API_URL"),
        dotenv_values.get("PREFECT_API_URL"),
        _profile_url(env, _profiles_path(env, cwd, dotenv_values)),
        _dig(_toml(cwd / "prefect.toml"), "api", "url"),
        _dig(_toml(cwd / "pyproject.toml"), "tool", "prefect", "api", "url"),
    ):
        if value:
            return str(value)
    return None
