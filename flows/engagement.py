"""The edge of engagement: the source a name stands for (the settings' built-in ones, else a PlausibleSite or
SearchConsoleProperty block of that name, its figures logged under the block's name)."""

from __future__ import annotations

from content_pipeline.engagement.connect import BUILT_IN, check_name, configured, named_sources, source_from_settings
from content_pipeline.engagement.source import EngagementSourceError, Source
from content_pipeline.settings import Settings
from flows.named_block import named_block


def _block_source(name: str) -> Source | None:
    """The PlausibleSite or SearchConsoleProperty block called `name`, as a source; None when there is none."""
    from blocks import PlausibleSite, SearchConsoleProperty

    block = named_block((PlausibleSite, SearchConsoleProperty), name, "engagement source", EngagementSourceError)
    return None if block is None else block.source(name)


class EdgeSources:
    """Engagement sources for one command or flow run. `api_url`: the Prefect API holding the blocks (None:
    only the settings' sources)."""

    def __init__(self, settings: Settings, api_url: str | None) -> None:
        self.settings, self.api_url = settings, api_url

    def source(self, name: str) -> Source:
        if name in BUILT_IN and (configured(self.settings, name) or self.api_url is None):
            return source_from_settings(self.settings, name)
        check_name(name)
        found = _block_source(name) if self.api_url is not None else None
        if found is None:
            if name in BUILT_IN:
                return source_from_settings(self.settings, name)  # names the settings it misses
            where = "" if self.api_url is not None else " (no Prefect API is configured to hold blocks)"
            raise EngagementSourceError(
                f"engagement source {name!r}: no PlausibleSite or SearchConsoleProperty block by that name{where}"
            )
        return found

    def default_names(self) -> list[str]:
        return named_sources(self.settings)
