"""What a run tells the world, and where its stages and chunks run: the interface the flow layer implements
with Prefect (tasks, artifacts, run logs, global limits), and the plain one the CLI runs with."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from content_pipeline.errors import StoreIOError
from content_pipeline.generation.context import SharedLimits
from content_pipeline.money import usd
from content_pipeline.run.heartbeat import Pulse
from content_pipeline.run.report import RunReport
from content_pipeline.settings import Settings

if TYPE_CHECKING:
    from content_pipeline.generation.chunk import ChunkJob

T = TypeVar("T")
STORE_RETRY_DELAYS_S = (1, 2, 4)  # a stage's store I/O is tried again after these waits, then it fails


def retryable(exc: BaseException) -> bool:
    """Only transient store failures (disk, network) are worth another try, never bad input or a held lease."""
    return isinstance(exc, (StoreIOError, OSError))


class Future(Protocol[T]):
    """What a submitted chunk gives back: a concurrent.futures.Future or a Prefect future."""

    def result(self) -> T: ...

    def add_done_callback(self, fn: Callable[[Any], object]) -> None: ...


Submit = Callable[["ChunkJob"], Future[int]]  # start one chunk: a task run, or a pool thread


class Reporter(Protocol):
    """Where a run's stages run and what it reports: the flow layer makes these Prefect things."""

    def stage(self, name: str, body: Callable[[], T]) -> T:
        """Run one stage, its store I/O retried (STORE_RETRY_DELAYS_S); its start and end are reported."""
        ...

    def chunks(self, width: int) -> AbstractContextManager[Submit]:
        """Where generation chunks run, `width` at a time at most: a submit function for the stage's life."""
        ...

    def progress(self, done: int, total: int, line: str) -> None:
        """Generation progress: `done` of `total` chunks (0 when it starts), and a line saying where it is."""
        ...

    def log(self, level: int, message: str) -> None: ...

    @property
    def live(self) -> bool:
        """True when a live display (a terminal's progress bar) shows the pulse; else each pulse is a line."""
        ...

    def pulse(self, pulse: Pulse) -> None:
        """A long stage's heartbeat (run/heartbeat.py): a progress bar when live, else one log line."""
        ...

    def publish(self, report: RunReport, rejects: list[dict[str, str]]) -> None:
        """The run report and this run's rejects, at the end of a run (the store has its own copy)."""
        ...

    def shared_limits(self, settings: Settings, per_chunk: int) -> SharedLimits | None:
        """Provider limits shared with other workers, when LLM_GLOBAL_LIMITS asks for them and they exist."""
        ...


LOGGER = logging.getLogger("content_pipeline")


class PlainReporter:
    """The run without Prefect: stages called in this process (store I/O retried as the flows retry it),
    chunks on a pool of threads, log lines and progress on stderr. The report is the caller's to print."""

    def __init__(self, logger: logging.Logger = LOGGER, console: Console | None = None) -> None:
        self.logger = logger
        self.console = console  # a terminal to draw progress bars on; None: stdout when it is one
        self._bars: dict[str, tuple[Progress, TaskID]] = {}

    @property
    def live(self) -> bool:
        return self.console is not None or sys.stdout.isatty()

    def pulse(self, pulse: Pulse) -> None:
        if not self.live:
            self.logger.info("%s %s", "finished:" if pulse.final else "heartbeat:", pulse.line())
            return
        bar, task = self._bars.get(pulse.stage) or self._bar(pulse)
        spent = f"${pulse.spent_usd:.4f} of {usd(pulse.budget_usd)}"
        bar.update(task, completed=pulse.done, total=pulse.total, spent=spent, rate=f"{pulse.rate_per_s:.2f}/s")
        if pulse.final:
            bar.stop()
            del self._bars[pulse.stage]

    def _bar(self, pulse: Pulse) -> tuple[Progress, TaskID]:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[spent]}"),
        )
        bar = Progress(*columns, console=self.console or Console(), transient=False)
        task = bar.add_task(pulse.stage, total=pulse.total, spent="", rate="")
        bar.start()
        self._bars[pulse.stage] = (bar, task)
        return bar, task

    def stage(self, name: str, body: Callable[[], T]) -> T:
        started = time.perf_counter()
        self.logger.debug("%s: started", name)
        waits = iter(STORE_RETRY_DELAYS_S)
        while True:
            try:
                result = body()
            except Exception as exc:
                wait = next(waits, None)
                if wait is None or not retryable(exc):
                    raise
                self.logger.warning("%s: %s; trying again in %s s", name, exc, wait)
                time.sleep(wait)
                continue
            self.logger.debug("%s: finished in %.2f s", name, time.perf_counter() - started)
            return result

    @contextmanager
    def chunks(self, width: int) -> Iterator[Submit]:
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="generate-chunk") as pool:
            yield lambda job: pool.submit(job)

    def progress(self, done: int, total: int, line: str) -> None:
        if done:
            self.logger.info("%s", line)

    def log(self, level: int, message: str) -> None:
        self.logger.log(level, "%s", message)

    def publish(self, report: RunReport, rejects: list[dict[str, str]]) -> None:
        pass

    def shared_limits(self, settings: Settings, per_chunk: int) -> SharedLimits | None:
        if settings.llm_global_limits:
            self.logger.warning(
                "LLM_GLOBAL_LIMITS is on but this run has no Prefect server: its calls are limited by "
                "CONCURRENCY alone, not shared with other workers (run it as a flow: --prefect)"
            )
        return None


def log_to_stderr(level: int = logging.INFO) -> None:
    """The CLI's log lines on stderr, one per line with the time, as Prefect's console shows a flow's."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(message)s", "%H:%M:%S"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False
