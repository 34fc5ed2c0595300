"""Run go-live the way the CLI runs it without a Prefect server, and the project's fake provider on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig
from content_pipeline.run.golive import go_live
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import PlainReporter
from content_pipeline.settings import Settings
from content_pipeline.store import Store, store_for


def run(settings: Settings, store: Store | None = None) -> RunReport:
    """The core's go-live on `store` (the one the settings name when None), server-free; its report."""
    return go_live(settings, store or store_for(settings), PlainReporter())


@contextmanager
def fake_llm(key: str = "sk-k", *faults: str, **config: Any) -> Iterator[FakeLLM]:
    """The project's fake provider on loopback, recording every request, with `faults` from the start."""
    with FakeLLM(FakeLLMConfig(key=key, record=True, seed=7, **config)) as server:
        server.set_faults(list(faults))
        yield server
