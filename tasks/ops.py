"""What the operations' flow runs publish: their results as Prefect artifacts and run log lines."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from content_pipeline.ops.health import Health

_LEVELS = {"green": logging.INFO, "amber": logging.WARNING, "red": logging.ERROR}


def publish_health(result: Health) -> None:
    """Each check a log line at its level (red an error), and the whole as the `health` artifact."""
    logger = get_run_logger()
    for check in result.checks:
        logger.log(_LEVELS[check.level], "%s", check.line())
    create_markdown_artifact(markdown=result.markdown(), key="health", description=f"health: {result.level}")
