"""Settings as every command and flow resolves them: the front door's settings (the core's, and how a
command is run), then the StoreLocation and LLMConfig blocks named by STORE_BLOCK and LLM_BLOCK when a
Prefect API is there to hold them, then the flags or a flow run's parameters."""

from __future__ import annotations

import sys
from typing import Any, Literal

from pydantic import Field

from content_pipeline.settings import Settings, load_settings

RunMode = Literal["auto", "prefect", "direct"]
LogLevel = Literal["DEBUG", "INFO", "WARNING"]


class EdgeSettings(Settings):
    """The core's settings and the front door's own: which blocks to read, and how the CLI runs a command."""

    store_block: str = Field("content-pipeline-store", description="StoreLocation block used when it exists")
    llm_block: str = Field("content-pipeline-llm", description="LLMConfig block used when it exists")
    run_mode: RunMode = Field(
        "auto",
        description="CLI: auto runs a Prefect flow when a Prefect API is configured and the core directly when "
        "not; prefect always runs the flow (with a temporary server); direct never does",
    )
    log_level: LogLevel = Field(
        "INFO",
        description="CLI console: INFO shows the run's own lines; DEBUG adds a flow run's Prefect engine lines "
        "(task runs begun and finished); WARNING only warnings and errors",
    )


def block_overrides(settings: EdgeSettings) -> dict[str, Any]:
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


def flow_settings(**params: Any) -> EdgeSettings:
    """A flow run's settings: the environment, the blocks that exist, then its parameters. A server whose
    blocks cannot be read fails the run (it must not write to another store than the one configured)."""
    return load_settings(EdgeSettings, **{**block_overrides(load_settings(EdgeSettings)), **params})


def resolved_settings(api_url: str | None, **flags: Any) -> EdgeSettings:
    """The settings a command runs on: with a Prefect API configured (`api_url`), the blocks that exist
    override the environment (as in a flow run), and the flags override both. A server that cannot be
    asked is said on stderr, and the environment's settings stand."""
    if api_url is None:
        return load_settings(EdgeSettings, **flags)
    try:
        blocks = block_overrides(load_settings(EdgeSettings))
    except Exception as exc:  # whatever the client raised: the command still runs, on the environment's store
        print(
            f"warning: the blocks on {api_url} could not be read ({type(exc).__name__}): STORE_URL stands",
            file=sys.stderr,
        )
        blocks = {}
    return load_settings(EdgeSettings, **{**blocks, **{k: v for k, v in flags.items() if v is not None}})
