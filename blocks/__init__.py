"""The project's Prefect blocks: where artifacts live (StoreLocation), which LLM answers (LLMConfig), where
posts go (WordPressSite, SignedWebhook), and where engagement comes from (PlausibleSite, SearchConsoleProperty)."""

from __future__ import annotations

from blocks.analytics import PlausibleSite, SearchConsoleProperty
from blocks.llm import LLMConfig
from blocks.publish import SignedWebhook, WordPressSite
from blocks.store import StoreLocation

__all__ = [
    "LLMConfig",
    "PlausibleSite",
    "SearchConsoleProperty",
    "SignedWebhook",
    "StoreLocation",
    "WordPressSite",
]
