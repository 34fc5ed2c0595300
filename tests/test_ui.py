"""The Prefect UI as a user clicks it, in a real browser (Debian's chromium through pytest-playwright) on a
`make up` stack: the go-live/ad-hoc form, a refused value, a run submitted from the form, its report."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.ports import free_port
from flows.stack import Stack

pytestmark = [pytest.mark.server, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
RUN_S = 180.0  # bound on the wait for the form's run to finish through the worker


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's browser: Debian's chromium, no download, nothing reaching out of the machine."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test-packages installs Debian's chromium (apt-get, as root)")
    return {"executable_path": CHROMIUM, "args": FLAGS, "headless": True}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`make up`'s shape: server with its UI, work pool, blocks, deployments and one worker."""
    state = tmp_path_factory.mktemp("ui-stack")
    stack = Stack(state, free_port())
    stack.start_server()
    try:
        stack.configure({"webhook": "", "slack": ""}, rate_per_s=500, concurrency=64)
        stack.start_worker("worker", {"STORE_URL": str(state / "store"), "PREFECT_WORKER_QUERY_SECONDS": "1"})
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            yield stack
    finally:
        stack.down()


@pytest.fixture
def step(page: Any, tmp_path: Path) -> Callable[[str, Callable[[], object]], object]:
    """Run one step of the walk; when it fails, a screenshot of the page is saved and named in the error."""
    page.set_default_timeout(30_000)

    def run(name: str, body: Callable[[], object]) -> object:
        try:
            return body()
        except Exception as exc:
            shot = tmp_path / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.png"
            page.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"step {name!r} failed ({exc}); screenshot: {shot}") from exc

    return run


def ad_hoc_schema() -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name("go-live/ad-hoc").parameter_openapi_schema["properties"]


def flow_runs() -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs()


def field(page: Any, name: str) -> Any:
    """The form's block for one parameter: its label, description and control."""
    return page.locator(".schema-form-property").filter(has=page.get_by_text(f"{name} (Optional)", exact=True))


def open_custom_run(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.ui_url}/deployments")
    page.get_by_text("ad-hoc", exact=True).first.click()
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run").first.click()
    page.get_by_role("button", name="Submit").wait_for()


def finished(run_id: Any) -> Any:
    deadline = time.monotonic() + RUN_S
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(1)
    raise AssertionError(f"the form's run {run_id} did not finish within {RUN_S:.0f} s")


def test_a_run_from_the_form_of_go_live_ad_hoc(stack: Stack, page: Any, step: Callable[..., Any]) -> None:
    schema = ad_hoc_schema()
    step("open Deployments, go-live/ad-hoc, Custom run", lambda: open_custom_run(page, stack))

    def shows_each_field() -> None:
        for name in ("scope", "limit", "budget_usd", "run_id"):
            block = field(page, name)
            assert block.count() == 1, f"the form has no field {name}"
            assert block.get_by_text(schema[name]["description"], exact=True).is_visible(), name
        choice = field(page, "scope").locator(".p-select button.p-select-button__control")  # a choice, not text
        assert choice.inner_text() == "all" and schema["scope"]["enum"] == ["all", "promo", "changed"]
        assert field(page, "limit").locator("input").input_value() == "200"  # the deployment's default

    step("the form shows each parameter with its description", shows_each_field)
    before = len(flow_runs())

    def refuses_zero() -> None:
        field(page, "limit").locator("input").fill("0")
        page.get_by_role("button", name="Submit").click()
        toast = page.get_by_text(re.compile(r"Validation failed for field 'limit'")).first
        assert "0 is less than the minimum of 1" in toast.inner_text()

    step("a limit of 0 is refused with the server's message", refuses_zero)
    assert len(flow_runs()) == before  # nothing was created

    def submits() -> None:
        field(page, "limit").locator("input").fill("5")
        field(page, "budget_usd").locator("input").fill("5")
        page.get_by_role("button", name="Submit").click()
        page.wait_for_url(re.compile(r"/deployments/deployment/[^/?]+(\?.*)?$"))

    step("a run with limit 5 and budget 5 is submitted from the form", submits)
    runs = flow_runs()
    assert len(runs) == before + 1
    run = finished(max(runs, key=lambda r: r.created).id)
    assert run.state.is_completed(), run.state.message
    assert run.parameters["limit"] == 5 and run.parameters["budget_usd"] == 5
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    report = next(a for a in artifacts if a.key == "go-live-report")
    spend = re.search(r"spend: (\$[0-9.]+ of \$5\.00) budget", report.data)
    assert spend, report.data
    assert "generated: 5 " in report.data

    def shows_the_report() -> None:
        page.goto(f"{stack.ui_url}/runs/flow-run/{run.id}")
        page.get_by_text("Artifacts", exact=True).first.click()
        page.get_by_text("go-live-report", exact=True).first.click()
        page.get_by_text(re.compile(r"^go-live run ")).first.wait_for()
        assert page.get_by_text(f"spend: {spend.group(1)} budget", exact=False).first.is_visible()

    step("the run's page shows the go-live-report artifact with the spend", shows_the_report)
