"""Health's Prefect checks: the server answers, and the work pool has a live worker."""

from __future__ import annotations

from content_pipeline.ops.health import Check, Probe

WORK_POOL = "content-pipeline"  # the work pool of prefect.yaml
TIMEOUT_S = 10.0  # a server that does not answer within this is red, not waited for


def prefect_probes(api_url: str | None) -> list[Probe]:
    """Health's Prefect probes for the API at `api_url` (none when no API is configured)."""
    return [lambda: prefect_check(api_url)] if api_url else []


def prefect_check(api_url: str, pool: str = WORK_POOL) -> Check:
    """Green when the server at `api_url` answers its health check and `pool` has a worker online."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import WorkerStatus
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with (
            temporary_settings({PREFECT_API_URL: api_url}),
            get_client(httpx_settings={"timeout": TIMEOUT_S}, sync_client=True) as client,
        ):
            failed = client.api_healthcheck()
            if failed is not None:
                return Check("prefect", "red", f"the server at {api_url} does not answer: {failed}")
            client.read_work_pool(pool)  # ObjectNotFound when there is none
            workers = client.read_workers_for_work_pool(pool)
    except ObjectNotFound:
        return Check("prefect", "red", f"the server at {api_url} answers, but has no work pool {pool!r}")
    except Exception as exc:  # whatever the client raised (connection, timeout, HTTP error): not healthy
        return Check("prefect", "red", f"the server at {api_url} could not be asked: {type(exc).__name__}: {exc}")
    online = [w.name for w in workers if w.status == WorkerStatus.ONLINE]
    if not online:
        return Check("prefect", "red", f"the server at {api_url} answers; work pool {pool!r} has no live worker")
    return Check("prefect", "green", f"the server at {api_url} answers; {len(online)} live worker(s) in {pool!r}")
