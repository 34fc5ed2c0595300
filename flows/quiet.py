"""Expected failures stay one line in a deployment run's log: no engine traceback for a flow that ended Failed."""

from __future__ import annotations

import logging

from prefect.exceptions import FailedRun

ENGINE_LINE = "Engine execution exited with unexpected exception"


class ExpectedFailure(logging.Filter):
    """Drops the engine's "exited with unexpected exception" record when what it carries is the FailedRun of
    a flow that returned its Failed state (the state's message already says what failed, in one line). A bug
    raises an exception of its own type, and that record is kept whole, traceback and all."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, FailedRun) and record.getMessage() == ENGINE_LINE)


def install() -> None:
    """On Prefect's flow-run logger, once per process (the deployment run's process imports the flows)."""
    logger = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(f, ExpectedFailure) for f in logger.filters):
        logger.addFilter(ExpectedFailure())
