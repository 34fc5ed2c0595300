"""The engagement sources the settings configure: `plausible` (PLAUSIBLE_*) and `search-console`
(SEARCH_CONSOLE_*); a source kept as a Prefect block is built in flows/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Protocol

from content_pipeline.configs import EngagementConfig
from content_pipeline.engagement.days import SOURCE
from content_pipeline.engagement.plausible import NAME as PLAUSIBLE
from content_pipeline.engagement.plausible import PlausibleSource
from content_pipeline.engagement.search_console import NAME as SEARCH_CONSOLE
from content_pipeline.engagement.search_console import SearchConsoleSource
from content_pipeline.engagement.source import EngagementSourceError, Source

BUILT_IN = (PLAUSIBLE, SEARCH_CONSOLE)


class Sources(Protocol):
    """The sources a command may pull from, by name."""

    def source(self, name: str) -> Source: ...

    def default_names(self) -> list[str]:
        """The sources pulled when none is named."""
        ...


def configured(settings: EngagementConfig, name: str) -> bool:
    """Whether the settings configure the built-in source `name`."""
    if name == PLAUSIBLE:
        return bool(settings.plausible_site_id or settings.plausible_api_key)
    return name == SEARCH_CONSOLE and bool(settings.search_console_site_url or settings.search_console_key)


def _service_account(settings: EngagementConfig) -> dict[str, Any]:
    """SEARCH_CONSOLE_KEY as a JSON key: its text, or the file it names (never shown in an error)."""
    assert settings.search_console_key is not None
    text = settings.search_console_key.get_secret_value().strip()
    if not text.startswith("{"):
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise EngagementSourceError(f"{SEARCH_CONSOLE}: SEARCH_CONSOLE_KEY's file: {exc.strerror}") from None
    try:
        account = json.loads(text)
    except ValueError:
        raise EngagementSourceError(f"{SEARCH_CONSOLE}: SEARCH_CONSOLE_KEY is not a JSON key") from None
    if not isinstance(account, dict):
        raise EngagementSourceError(f"{SEARCH_CONSOLE}: SEARCH_CONSOLE_KEY is not a JSON key")
    return account


def source_from_settings(settings: EngagementConfig, name: str) -> Source:
    """The built-in source `name`, or one clear line naming the setting that is missing."""
    if name == PLAUSIBLE:
        key = settings.plausible_api_key
        if not settings.plausible_site_id or key is None or not key.get_secret_value():
            raise EngagementSourceError(f"{PLAUSIBLE}: set PLAUSIBLE_SITE_ID and PLAUSIBLE_API_KEY")
        return PlausibleSource(settings.plausible_url, key.get_secret_value(), settings.plausible_site_id)
    if name == SEARCH_CONSOLE:
        if not settings.search_console_site_url or settings.search_console_key is None:
            raise EngagementSourceError(f"{SEARCH_CONSOLE}: set SEARCH_CONSOLE_SITE_URL and SEARCH_CONSOLE_KEY")
        account = _service_account(settings)
        return SearchConsoleSource(settings.search_console_site_url, account, api_base=settings.search_console_api)
    raise EngagementSourceError(
        f"engagement source {name!r} is unknown: use plausible, search-console, or the name of a source block"
    )


def check_name(name: str) -> str:
    """`name` when it may name a source (what its figures are logged under); else one line saying so."""
    if not re.match(SOURCE, name):
        raise EngagementSourceError(f"engagement source {name!r}: a name is 1-40 characters of a-z, 0-9 and -")
    return name


def named_sources(settings: EngagementConfig) -> list[str]:
    """ENGAGEMENT_SOURCES as names; when empty, every built-in source the settings configure."""
    names = [n.strip() for n in settings.engagement_sources.split(",") if n.strip()]
    return names or [name for name in BUILT_IN if configured(settings, name)]


class SettingsSources:
    """The settings' built-in sources only (no Prefect API to hold blocks)."""

    def __init__(self, settings: EngagementConfig) -> None:
        self.settings = settings

    def source(self, name: str) -> Source:
        return source_from_settings(self.settings, name)

    def default_names(self) -> list[str]:
        return named_sources(self.settings)
