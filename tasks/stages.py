"""The Prefect tasks a run's stages and generation chunks run as."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import TaskRun
from prefect.exceptions import ObjectNotFound
from prefect.states import State

from content_pipeline.generation.chunk import ChunkJob
from content_pipeline.run.reporter import STORE_RETRY_DELAYS_S, retryable

T = TypeVar("T")
CHUNK_TAG = "llm-generation"  # `prefect concurrency-limit create llm-generation N` caps chunks across runs


def retry_on_store_io(task: object, task_run: TaskRun, state: State) -> bool:
    """Retry only transient store failures (disk, network), never bad input or a held lease."""
    try:
        state.result()
    except Exception as exc:
        return retryable(exc)
    return False


@task(
    name="stage",
    retries=len(STORE_RETRY_DELAYS_S),
    retry_delay_seconds=list(STORE_RETRY_DELAYS_S),
    retry_condition_fn=retry_on_store_io,
    cache_policy=NONE,
)
def _stage(body: Callable[[], Any]) -> Any:
    return body()


@cache
def stage_task(name: str) -> Task[..., Any]:
    """The task one stage runs as, named for it (inventory, batch, ...), its store I/O retried."""
    return _stage.with_options(name=name)


@task(name="generate-chunk", cache_policy=NONE)
def generate_chunk_task(job: ChunkJob) -> int:
    """One chunk of items; no task retry (the ledger already holds what finished)."""
    records = job()
    get_run_logger().info("chunk done: %d outcome(s) of %d item(s)", records, len(job.items))
    return records


def chunk_task() -> Task[..., int]:
    """The chunk task for this run: tagged `CHUNK_TAG` when a tag limit by that name exists on the server
    (checked once per run), so the limit caps chunks across runs. Untagged otherwise: every tagged task
    run asks the server for a slot before it starts, 0.1-2 s at the start of a run for nothing."""
    with get_client(sync_client=True) as client:
        try:
            client.read_concurrency_limit_by_tag(CHUNK_TAG)
        except ObjectNotFound:
            return generate_chunk_task
    return generate_chunk_task.with_options(tags=[CHUNK_TAG])
