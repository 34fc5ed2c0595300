"""The report flow's markdown artifact against the session's Prefect server: each chart embedded as an image
the Prefect UI renders (a markdown image with a `data:` URI), the very PNG kept in the store, whose path it
still names; the stored markdown stays free of inline images."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from content_pipeline.ops.charts import HEIGHT_PX, WIDTH_PX
from content_pipeline.ops.reports import CHARTS
from content_pipeline.store import open_store
from flows import pipeline
from tests.conftest import make_item
from tests.support.helpers import copy_store, generated_store

pytestmark = pytest.mark.server
IMAGE = re.compile(r"!\[([a-z-]+) chart\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")
STORED = re.compile(r"stored in (\S+)/(reports/\S+/)report\.md$")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generated_store(tmp_path_factory.mktemp("charts"), [make_item(n) for n in range(1, 4)])


@pytest.fixture
def env(prefect_server, monkeypatch, generated, tmp_path) -> Path:
    store, catalogue = copy_store(generated, tmp_path)
    monkeypatch.setenv("STORE_URL", str(store))
    monkeypatch.setenv("CATALOGUE", str(catalogue))
    return store


def test_the_report_artifact_embeds_each_stored_chart_as_an_image(env: Path) -> None:
    state = pipeline.report_flow(return_state=True)
    assert state.is_completed(), state.message
    stored = STORED.search(state.message or "")
    assert stored, state.message
    url, base = stored.groups()
    with get_client(sync_client=True) as client:
        run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        artifacts = {a.key: a for a in client.read_artifacts(flow_run_filter=run)}
    assert set(artifacts) == {"kpi-daily-report", "kpi-daily-report-table"}
    markdown = str(artifacts["kpi-daily-report"].data)
    images = IMAGE.findall(markdown)
    assert [name for name, _ in images] == list(CHARTS)
    store = open_store(url)
    for name, data in images:
        png = base64.b64decode(data)
        assert png == store.get(f"{base}{name}.png")
        assert struct.unpack(">II", png[16:24]) == (WIDTH_PX, HEIGHT_PX)
        assert f"- {name}: `{url}/{base}{name}.png`" in markdown  # the path in the store, still named
    assert len(markdown) < 100_000
    assert "data:image" not in store.get(f"{base}report.md").decode()
