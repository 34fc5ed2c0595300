"""The project's Prefect blocks: where artifacts live (StoreLocation) and which LLM answers (LLMConfig)."""

from __future__ import annotations

from blocks.llm import LLMConfig
from blocks.store import StoreLocation

__all__ = ["LLMConfig", "StoreLocation"]
