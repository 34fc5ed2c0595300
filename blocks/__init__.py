"""The project's Prefect blocks: where artifacts live (StoreLocation), which LLM answers (LLMConfig), and where
posts go (WordPressSite, SignedWebhook)."""

from __future__ import annotations

from blocks.llm import LLMConfig
from blocks.publish import SignedWebhook, WordPressSite
from blocks.store import StoreLocation

__all__ = ["LLMConfig", "SignedWebhook", "StoreLocation", "WordPressSite"]
