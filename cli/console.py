"""The CLI's console during a flow run: the run's own lines, Prefect's engine lines only at LOG_LEVEL=DEBUG."""

from __future__ import annotations

import logging
from pathlib import Path

_ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class EngineLines(logging.Filter):
    """Drops the lines Prefect's engine writes about a run (task run begun, finished in state ...) below
    WARNING; the run's own lines, logged through the same loggers from this project's code, pass."""

    def __init__(self) -> None:
        super().__init__()
        import prefect

        self._prefect = str(Path(prefect.__file__).resolve().parent)

    def filter(self, record: logging.LogRecord) -> bool:
        engine = record.name in _ENGINE_LOGGERS and record.pathname.startswith(self._prefect)
        return record.levelno >= logging.WARNING or not engine


def console_for_flows(level: str) -> None:
    """Set the console's level (the API handler, what the UI shows, is left alone)."""
    console = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    for handler in console:
        handler.setLevel(level)
        if level != "DEBUG" and not any(isinstance(f, EngineLines) for f in handler.filters):
            handler.addFilter(EngineLines())
