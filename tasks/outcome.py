"""A command's outcome in a flow run: its lines in the run's log at their levels, its artifacts kept."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from content_pipeline.commands.outcome import Outcome

LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def show_outcome(outcome: Outcome) -> None:
    """Show `outcome` in this flow run: log each line at its level and create each artifact (markdown, or a table)."""
    logger = get_run_logger()
    for line in outcome.lines:
        logger.log(LEVELS[line.level], "%s", line.text)
    for artifact in outcome.artifacts:
        if artifact.markdown is not None:
            create_markdown_artifact(markdown=artifact.markdown, key=artifact.key, description=artifact.description)
        if artifact.table is not None:
            create_table_artifact(table=artifact.table, key=artifact.key, description=artifact.description)
