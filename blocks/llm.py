"""LLMConfig: which model answers, where, with which key and prices, as a Prefect block."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from blocks.store import DOCS, HIDE_INPUT, no_credentials
from content_pipeline.settings import DEFAULT_PRICES, ModelPrice


class LLMConfig(Block):
    """The LLM content-pipeline calls through the openai SDK: OpenAI or any compatible server."""

    _block_type_name = "Content Pipeline LLM"
    _block_type_slug = "content-pipeline-llm"
    _documentation_url = DOCS
    _code_example = """
        ```python
        from blocks.llm import LLMConfig

        llm = LLMConfig.load("BLOCK_NAME")
        ```
    """

    model_config = HIDE_INPUT

    model: str = Field(default="gpt-4o-mini", description="Model of the first attempt.")
    strong_model: str = Field(default="gpt-4o", description="Model of the one escalation attempt.")
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL; empty for OpenAI.")
    api_key: SecretStr | None = Field(default=None, description="API key; empty means the offline model.")
    fallback_model: str | None = Field(
        default=None, description="Where calls go once the provider is down (it needs a price); empty: none."
    )
    fallback_base_url: str | None = Field(
        default=None, description="The fallback's OpenAI-compatible base URL; empty: base_url."
    )
    fallback_api_key: SecretStr | None = Field(default=None, description="The fallback's API key; empty: api_key.")
    price_table: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES), description="USD per million input and output tokens, by model."
    )

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return no_credentials(value, "OPENAI_BASE_URL")

    @field_validator("fallback_base_url")
    @classmethod
    def _no_fallback_credentials(cls, value: str | None) -> str | None:
        return no_credentials(value, "FALLBACK_BASE_URL")

    def settings_overrides(self) -> dict[str, Any]:
        """The settings this block sets for a run."""
        return {
            "model": self.model,
            "strong_model": self.strong_model,
            "openai_base_url": self.base_url,
            "openai_api_key": self.api_key,
            "fallback_model": self.fallback_model,
            "fallback_base_url": self.fallback_base_url,
            "fallback_api_key": self.fallback_api_key,
            "price_table": self.price_table,
        }
