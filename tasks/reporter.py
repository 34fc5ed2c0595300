"""The run's reporter in a Prefect flow run: stages and chunks as task runs, log lines in the run's log,
progress, report and rejects as artifacts, the provider's limits shared through the server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.exceptions import MissingContextError
from prefect.utilities.annotations import quote

from content_pipeline.generation.chunk import ChunkJob
from content_pipeline.generation.context import SharedLimits
from content_pipeline.run.heartbeat import Pulse
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import Future, Submit
from content_pipeline.settings import Settings
from tasks.limits import prefect_limits
from tasks.stages import chunk_task, stage_task

T = TypeVar("T")
_FALLBACK = logging.getLogger("content_pipeline")


class PrefectReporter:
    """Implements content_pipeline.run.reporter.Reporter for a flow run of `run_id`."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._progress: UUID | None = None

    def stage(self, name: str, body: Callable[[], T]) -> T:
        return stage_task(name)(body)

    @contextmanager
    def chunks(self, width: int) -> Iterator[Submit]:
        """Chunks as task runs on the flow's task runner (its threads); quote: a job holds no futures."""
        task = chunk_task()

        def submit(job: ChunkJob) -> Future[int]:
            return task.submit(quote(job))

        yield submit

    def progress(self, done: int, total: int, line: str) -> None:
        if self._progress is None:
            self._progress = create_progress_artifact(
                progress=0.0, key="go-live-progress", description=f"generation, run {self.run_id}"
            )
        if done:
            update_progress_artifact(self._progress, progress=100.0 * done / total)
            self.log(logging.INFO, line)

    @property
    def live(self) -> bool:
        return False  # a flow run's pulse is a line in its log (the progress artifact is the bar)

    def pulse(self, pulse: Pulse) -> None:
        self.log(logging.INFO, f"{'finished' if pulse.final else 'heartbeat'}: {pulse.line()}")

    def log(self, level: int, message: str) -> None:
        try:
            logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = get_run_logger()
        except MissingContextError:  # a thread of the run outside any task run
            logger = _FALLBACK
        logger.log(level, "%s", message)

    def publish(self, report: RunReport, rejects: list[dict[str, str]]) -> None:
        description = f"run {report.run_id}"
        create_markdown_artifact(markdown=report.markdown(), key="go-live-report", description=description)
        if rejects:
            create_table_artifact(table=rejects, key="go-live-rejects", description=f"rejects of {description}")

    def shared_limits(self, settings: Settings, per_chunk: int) -> SharedLimits | None:
        return prefect_limits(settings, per_chunk)
