"""Settings as every command and flow resolves them: the environment, then the StoreLocation and LLMConfig
blocks named by STORE_BLOCK and LLM_BLOCK when a Prefect API is there to hold them, then the flags."""

from __future__ import annotations

import sys
from typing import Any

from content_pipeline.settings import Settings, load_settings


def block_overrides(settings: Settings) -> dict[str, Any]:
    """What the StoreLocation and LLMConfig blocks named in the settings set, for those that exist."""
    from blocks import LLMConfig, StoreLocation

    found: dict[str, Any] = {}
    for block_type, name in ((StoreLocation, settings.store_block), (LLMConfig, settings.llm_block)):
        if not name:
            continue
        try:
            block = block_type.load(name)
        except ValueError:  # no such block: the settings stand
            continue
        found.update(block.settings_overrides())
    return found


def resolved_settings(api_url: str | None, **flags: Any) -> Settings:
    """The settings a command runs on: with a Prefect API configured (`api_url`), the blocks that exist
    override the environment (as in a flow run), and the flags override both. A server that cannot be
    asked is said on stderr, and the environment's settings stand."""
    if api_url is None:
        return load_settings(**flags)
    try:
        blocks = block_overrides(load_settings())
    except Exception as exc:  # whatever the client raised: the command still runs, on the environment's store
        print(
            f"warning: the blocks on {api_url} could not be read ({type(exc).__name__}): STORE_URL stands",
            file=sys.stderr,
        )
        blocks = {}
    return load_settings(**{**blocks, **{k: v for k, v in flags.items() if v is not None}})
