"""The engagement sources as Prefect blocks: a Plausible site (Stats API key) and a Search Console property
(a service account's JSON key); each builds the core's source."""

from __future__ import annotations

import json

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from blocks.store import DOCS, HIDE_INPUT, no_credentials
from content_pipeline.engagement.plausible import NAME as PLAUSIBLE
from content_pipeline.engagement.plausible import PlausibleSource
from content_pipeline.engagement.search_console import API, SearchConsoleSource
from content_pipeline.engagement.search_console import NAME as SEARCH_CONSOLE
from content_pipeline.engagement.source import EngagementSourceError


class PlausibleSite(Block):
    """A site on Plausible Analytics (plausible.io or self-hosted) whose Stats API v2 gives each published
    post's visitors, pageviews, time on page and scroll depth per day."""

    _block_type_name = "Content Pipeline Plausible"
    _block_type_slug = "content-pipeline-plausible"
    _documentation_url = DOCS
    _code_example = """
        ```python
        from blocks.analytics import PlausibleSite

        source = PlausibleSite.load("BLOCK_NAME").source()
        ```
    """

    model_config = HIDE_INPUT

    url: str = Field(default="https://plausible.io", description="The Plausible server's base URL.")
    site_id: str = Field(description="The site's domain as registered in Plausible, e.g. shop.example.com.")
    api_key: SecretStr = Field(description="A Stats API key (Settings > API Keys > Stats API).")
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="Timeout of one API call, seconds.")

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        return no_credentials(value, "PLAUSIBLE_URL") or value

    def source(self, name: str = PLAUSIBLE) -> PlausibleSource:
        """The core's source, its figures logged under `name` (the block's name, when loaded by name)."""
        key = self.api_key.get_secret_value()
        return PlausibleSource(self.url, key, self.site_id, timeout_s=self.timeout_s, name=name)


class SearchConsoleProperty(Block):
    """A Google Search Console property whose search analytics give each published post's clicks,
    impressions and position per day, read by a service account added to the property as a user."""

    _block_type_name = "Content Pipeline Search Console"
    _block_type_slug = "content-pipeline-search-console"
    _documentation_url = DOCS
    _code_example = """
        ```python
        from blocks.analytics import SearchConsoleProperty

        source = SearchConsoleProperty.load("BLOCK_NAME").source()
        ```
    """

    model_config = HIDE_INPUT

    site_url: str = Field(description="The property: https://shop.example.com/ or sc-domain:shop.example.com.")
    service_account_key: SecretStr = Field(description="The service account's JSON key file, its whole text.")
    api_base: str = Field(default=API, description="The Search Console API's base URL.")
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="Timeout of one API call, seconds.")

    def source(self, name: str = SEARCH_CONSOLE) -> SearchConsoleSource:
        """The core's source, its figures logged under `name` (the block's name, when loaded by name)."""
        try:
            account = json.loads(self.service_account_key.get_secret_value())
        except ValueError:
            raise EngagementSourceError("search-console: the service account key is not JSON") from None
        return SearchConsoleSource(self.site_url, account, api_base=self.api_base, timeout_s=self.timeout_s, name=name)
