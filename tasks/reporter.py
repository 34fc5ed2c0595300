"""The run's reporter in a Prefect flow run: stages and chunks as task runs, log lines in the run's log,
progress, report and rejects as artifacts, the provider's limits shared through the server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar, cast
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.exceptions import MissingContextError
from prefect.states import Failed, State
from prefect.utilities.annotations import quote

from content_pipeline.errors import PipelineError
from content_pipeline.generation.chunk import ChunkJob
from content_pipeline.generation.context import SharedLimits
from content_pipeline.run.heartbeat import Pulse
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import Future, Submit, retryable
from content_pipeline.settings import Settings
from tasks.limits import prefect_limits
from tasks.stages import chunk_task, stage_task

T = TypeVar("T")
Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


def _flow_run_logger() -> Logger:
    """The calling flow run's logger (the project's plain logger outside any flow run)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("content_pipeline")


class PrefectReporter:
    """Implements content_pipeline.run.reporter.Reporter for a flow run of `run_id`."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._progress: UUID | None = None
        # the flow run's own logger, made here in the flow: threads outside any run context (the heartbeat's)
        # log through it, so their lines reach the run's log in the UI rather than a console nobody reads
        self._flow_logger = _flow_run_logger()

    def stage(self, name: str, body: Callable[[], T]) -> T:
        """The stage as a task run. An expected refusal (bad input, a budget too low, a held lease: a
        PipelineError not worth a retry) ends the task run Failed with its one line, and is raised again
        here, in the flow, for the run to report: no engine traceback in the run's log for it."""
        refused: list[PipelineError] = []

        def guarded() -> T | State:
            try:
                return body()
            except PipelineError as exc:
                if retryable(exc):
                    raise
                refused.append(exc)
                return Failed(message=f"{name}: {exc}")

        state = stage_task(name)(guarded, return_state=True)
        if refused:
            raise refused[0]
        return cast(T, state.result())

    @contextmanager
    def chunks(self, width: int) -> Iterator[Submit]:
        """Chunks as task runs on the flow's task runner (its threads); quote: a job holds no futures."""
        task = chunk_task()

        def submit(job: ChunkJob) -> Future[int]:
            return task.submit(quote(job))

        yield submit

    def progress(self, done: int, total: int, line: str) -> None:
        """The progress artifact is made when generation starts (its bar and line follow the pulse); each
        chunk-progress line goes to the run's log."""
        if self._progress is None:
            self._progress = create_progress_artifact(
                progress=0.0, key="go-live-progress", description=f"generation, run {self.run_id}: starting"
            )
        if done:
            self.log(logging.INFO, line)

    @property
    def live(self) -> bool:
        return False  # a flow run's pulse is a line in its log (the progress artifact is the bar)

    def pulse(self, pulse: Pulse) -> None:
        """A line in the run's log, and the progress artifact's bar and description (items done of all,
        rate, ETA, spend of the budget) brought up to date."""
        self.log(logging.INFO, f"{'finished' if pulse.final else 'heartbeat'}: {pulse.line()}")
        if self._progress is not None and pulse.total:
            description = f"run {self.run_id}: {pulse.line()}"
            update_progress_artifact(self._progress, progress=100.0 * pulse.done / pulse.total, description=description)

    def log(self, level: int, message: str) -> None:
        try:
            logger: Logger = get_run_logger()
        except MissingContextError:  # a thread of the run outside any task run: the heartbeat's, say
            logger = self._flow_logger
        logger.log(level, "%s", message)

    def publish(self, report: RunReport, rejects: list[dict[str, str]]) -> None:
        description = f"run {report.run_id}"
        create_markdown_artifact(markdown=report.markdown(), key="go-live-report", description=description)
        if rejects:
            create_table_artifact(table=rejects, key="go-live-rejects", description=f"rejects of {description}")

    def shared_limits(self, settings: Settings, per_chunk: int) -> SharedLimits | None:
        return prefect_limits(settings, per_chunk)
