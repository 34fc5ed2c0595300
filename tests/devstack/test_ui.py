"""The Prefect UI as a user clicks it, in a real browser (Debian's chromium through pytest-playwright) on a
`make up` stack for a real provider (the schedules that spend start paused): the go-live/ad-hoc form, a
refused value, a run submitted from the form and its report, a go-live's heartbeat lines in its log, a
report's chart on its run page, and a publish run that waits more than five minutes for an approver who
then approves it in the UI."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.ports import free_port
from devstack.stack import Stack
from tests.conftest import make_item
from tests.support.helpers import generated_store, server_quiet
from tests.support.webhook_receiver import Receiver, WebhookReceiver

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.slow]
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
PAUSED_S = 330.0  # how long the publish run waits for its approver before the test approves: over 5 minutes
HOOK_SECRET = "whsec-ui"


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's browser: Debian's chromium, no download, nothing reaching out of the machine."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test-packages installs Debian's chromium (apt-get, as root)")
    return {"executable_path": CHROMIUM, "args": FLAGS, "headless": True}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`make up`'s shape for a real provider: server with its UI, work pool, blocks, deployments (the ones
    that spend paused) and one worker (the offline model answers: nothing here reaches a provider)."""
    state = tmp_path_factory.mktemp("ui-stack")
    stack = Stack(state, free_port())
    try:
        with server_quiet(stack):
            stack.start_server()
            stack.configure({"webhook": "", "slack": ""}, rate_per_s=500, concurrency=64, spending_active=False)
        stack.start_worker("worker", {"STORE_URL": str(state / "store"), "PREFECT_WORKER_QUERY_SECONDS": "1"})
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            yield stack
    finally:
        stack.down()


@pytest.fixture(autouse=True)
def quiet(stack: Stack) -> Iterator[None]:
    """Every test here fails when the server logs an error while it runs."""
    with server_quiet(stack):
        yield


class Waiting(NamedTuple):
    """A publish run of the `publish/morning` deployment, paused for an approver since `since`."""

    run_id: Any
    receiver: Receiver
    since: float


@pytest.fixture(scope="module", autouse=True)
def waiting_publish(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Waiting]:
    """Started with the module, so its long wait for an approver overlaps the other tests: PUBLISH_APPROVAL=ui,
    the two other signals set, three posts for a signed webhook, an hour's timeout."""
    store, catalogue = generated_store(tmp_path_factory.mktemp("approval"), [make_item(n) for n in range(1, 4)])
    with WebhookReceiver(HOOK_SECRET) as receiver:
        env = {
            "STORE_URL": str(store),
            "CATALOGUE": str(catalogue),
            "PUBLISH_TARGET": "webhook",
            "PUBLISH_WEBHOOK_URL": receiver.url,
            "PUBLISH_WEBHOOK_SECRET": HOOK_SECRET,
            "PUBLISH_APPROVAL": "ui",
            "ALLOW_AUTONOMOUS_PUBLISH": "true",
            "GOVERNANCE_APPROVED": "yes",
            "PUBLISH_APPROVAL_TIMEOUT_S": "3600",
        }
        run = start("publish/morning", job_variables={"env": env})
        yield Waiting(run.id, receiver, time.monotonic())


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


def start(name: str, parameters: dict[str, Any] | None = None, job_variables: dict[str, Any] | None = None) -> Any:
    """A run of the deployment `name`, as its Run button makes one (Prefect's `run_deployment` hands back a
    coroutine under the event loop pytest-playwright's sync API keeps running)."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name)
        return client.create_flow_run_from_deployment(
            deployment.id, parameters=parameters or {}, job_variables=job_variables
        )


def ad_hoc_schema() -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name("go-live/ad-hoc").parameter_openapi_schema["properties"]


def flow_runs() -> list[Any]:
    """The runs of go-live/ad-hoc (the scheduler adds runs of the other deployments at any time)."""
    with get_client(sync_client=True) as client:
        ad_hoc = client.read_deployment_by_name("go-live/ad-hoc")
        return client.read_flow_runs(deployment_filter=by_deployment(ad_hoc.id))


def field(page: Any, name: str) -> Any:
    """The form's block for one parameter: its label, description and control."""
    return page.locator(".schema-form-property").filter(has=page.get_by_text(f"{name} (Optional)", exact=True))


def open_custom_run(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.ui_url}/deployments")
    page.get_by_text("ad-hoc", exact=True).first.click()
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run").first.click()
    page.get_by_role("button", name="Submit").wait_for()


def finished(run_id: Any, bound_s: float = RUN_S) -> Any:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(1)
    raise AssertionError(f"the run {run_id} did not finish within {bound_s:.0f} s")


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


def test_a_real_provider_s_stack_schedules_nothing_that_spends(stack: Stack) -> None:
    """`make up` with a real provider: production, promo and publish have no run coming; the rest do."""
    with get_client(sync_client=True) as client:
        deployments = {d.name: d for d in client.read_deployments()}
        upcoming = {
            name: [r for r in client.read_flow_runs(deployment_filter=by_deployment(d.id)) if r.auto_scheduled]
            for name, d in deployments.items()
        }
    paused = {name for name, d in deployments.items() if d.schedules and not any(s.active for s in d.schedules)}
    assert paused == {"production", "promo", "morning"}
    assert upcoming["production"] == upcoming["promo"] == upcoming["morning"] == []
    assert upcoming["checks-hourly"] and upcoming["release-stale-every-15-minutes"] and upcoming["nightly"]


def by_deployment(deployment_id: Any) -> Any:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))


def test_a_go_live_s_heartbeat_lines_are_in_its_log_in_the_ui(
    stack: Stack, page: Any, step: Callable[..., Any]
) -> None:
    slow = {"env": {"HEARTBEAT_S": "1", "OFFLINE_LATENCY_MS": "2500"}}  # generation lasts a few heartbeats
    run = start("go-live/ad-hoc", parameters={"limit": 20, "budget_usd": 5}, job_variables=slow)
    done = finished(run.id)
    assert done.state.is_completed(), done.state.message

    def shows_heartbeats() -> None:
        page.goto(f"{stack.ui_url}/runs/flow-run/{run.id}")
        line = page.get_by_text(re.compile(r"^heartbeat: generate: \d+/20 item\(s\)")).first
        line.wait_for()
        assert re.search(r"ETA .*\$[0-9.]+ of \$5\.00 spent", line.inner_text()), line.inner_text()

    step("the go-live run's Logs tab shows its heartbeat lines", shows_heartbeats)


def test_a_publish_run_waits_past_five_minutes_and_is_approved_in_the_ui(
    stack: Stack, waiting_publish: Waiting, page: Any, step: Callable[..., Any]
) -> None:
    wait = waiting_publish
    child = approval_run(wait.run_id)
    while time.monotonic() - wait.since < PAUSED_S:  # the wait the deployment's slot used to lapse in
        with get_client(sync_client=True) as client:
            parent, child = client.read_flow_run(wait.run_id), client.read_flow_run(child.id)
        assert parent.state.is_running(), f"the publish run left Running while it waited: {parent.state}"
        assert child.state.is_paused(), f"the approval stopped waiting: {child.state}"
        time.sleep(10)
    assert wait.receiver.deliveries == []

    def approves() -> None:
        page.goto(f"{stack.ui_url}/runs/flow-run/{child.id}")
        page.get_by_role("button", name="Resume").click()
        page.get_by_text("3 post(s) would go out live to").first.wait_for()
        form = page.locator(".p-modal__card")
        form.locator(".schema-form-property").filter(has=page.get_by_text("Approve (Optional)")).locator(
            "[role=switch], input[type=checkbox]"
        ).first.check(force=True)
        form.locator(".schema-form-property").filter(has=page.get_by_text("Approver", exact=True)).locator(
            "textarea, input"
        ).first.fill("ops@example.com")
        form.get_by_role("button", name="Submit").click()
        form.wait_for(state="hidden")

    step("the paused approval is answered yes from its Resume form", approves)
    run = finished(wait.run_id)
    assert run.state.is_completed(), run.state.message
    assert "live: approved in the UI by ops@example.com" in run.state.message
    assert "3 planned: 3 created" in run.state.message
    assert len(wait.receiver.deliveries) == 3 and all(d.verified for d in wait.receiver.deliveries)


def approval_run(parent_id: Any) -> Any:
    """The publish run's paused `publish-approval` child (waits, bounded, for it to pause)."""
    deadline = time.monotonic() + RUN_S
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            children = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id]))
            )
        paused = [c for c in children if c.state is not None and c.state.is_paused()]
        if paused:
            return paused[0]
        time.sleep(1)
    raise AssertionError(f"the publish run {parent_id} never paused for an approver within {RUN_S:.0f} s")


def test_a_report_s_charts_are_visible_on_its_run_page(stack: Stack, page: Any, step: Callable[..., Any]) -> None:
    run = start("report/kpi-daily")
    done = finished(run.id)
    assert done.state.is_completed(), done.state.message

    def shows_the_charts() -> None:
        page.goto(f"{stack.ui_url}/runs/flow-run/{run.id}")
        page.get_by_text("Artifacts", exact=True).first.click()
        page.get_by_text("kpi-daily-report", exact=True).first.click()  # exact: not kpi-daily-report-table
        for name in ("cost-and-successes", "success-rate", "rejects-by-reason"):
            chart = page.locator(f'img[alt="{name} chart"]')
            chart.scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chart.element_handle())
            assert chart.is_visible() and chart.evaluate("img => img.naturalWidth") == 900, name

    step("the report's artifact shows its three charts as images", shows_the_charts)
