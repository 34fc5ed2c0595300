"""Approval in the Prefect UI: with PUBLISH_APPROVAL=ui the publish flow pauses with a form showing what
would go out; an approver answers it through Prefect's API, as the UI does (approve, reject, or no answer
before PUBLISH_APPROVAL_TIMEOUT_S). Only approve publishes live, and the record names the approver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import PrefectHTTPStatusError

from content_pipeline.publish.history import read_history
from content_pipeline.store import open_store
from flows import pipeline
from tests.conftest import make_item
from tests.support.helpers import copy_store, generated_store
from tests.support.webhook_receiver import Receiver, WebhookReceiver

pytestmark = pytest.mark.server
SECRET = "whsec-ui-approval"
ITEMS = 3


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generated_store(tmp_path_factory.mktemp("approval"), [make_item(n) for n in range(1, ITEMS + 1)])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with WebhookReceiver(SECRET) as got:
        yield got


@pytest.fixture
def env(prefect_server, monkeypatch, generated, tmp_path, receiver: Receiver) -> Path:
    """The flow's settings: this test's store, the webhook, two signals set and the third left to the UI."""
    store, catalogue = copy_store(generated, tmp_path)
    settings = {
        "STORE_URL": str(store),
        "CATALOGUE": str(catalogue),
        "PUBLISH_TARGET": "webhook",
        "PUBLISH_WEBHOOK_URL": receiver.url,
        "PUBLISH_WEBHOOK_SECRET": SECRET,
        "PUBLISH_APPROVAL": "ui",
        "ALLOW_AUTONOMOUS_PUBLISH": "true",
        "GOVERNANCE_APPROVED": "yes",
        "PUBLISH_APPROVAL_GRANTED": "",
        "PUBLISH_APPROVAL_TIMEOUT_S": "60",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return store


def answer_when_paused(run_input: dict[str, Any] | None, seen: dict[str, Any]) -> threading.Thread:
    """An approver: wait (bounded) for the paused `publish-approval` run (the publish run's child), read the
    form's description, then resume that run with `run_input` through Prefect's API (None: never answer)."""

    def approver() -> None:
        with get_client(sync_client=True) as client:
            paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=["publish-approval"])), flow_run_filter=paused
                )
                if runs:
                    seen["run"] = runs[0]
                    keyset = runs[0].state.state_details.run_input_keyset
                    try:  # the run shows Paused a moment before its form is stored: look again
                        seen["description"] = client.read_flow_run_input(runs[0].id, keyset["description"])
                    except PrefectHTTPStatusError as exc:
                        if exc.response.status_code != 404:
                            raise
                        time.sleep(0.2)
                        continue
                    if run_input is not None:
                        client.resume_flow_run(runs[0].id, run_input=run_input)
                    return
                time.sleep(0.5)

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    return thread


def test_an_approval_in_the_ui_publishes_live_and_the_record_names_the_approver(env, receiver: Receiver) -> None:
    seen: dict[str, Any] = {}
    approver = answer_when_paused({"approve": True, "approver": "lee@example.com", "note": "checked"}, seen)
    state = pipeline.publish_flow(return_state=True)
    approver.join(5)
    assert state.is_completed(), state.message
    assert f"{ITEMS} planned: {ITEMS} created" in state.message
    assert f"**{ITEMS} post(s) would go out live to `webhook`.**" in seen["description"]
    assert "| item-0001 |" in seen["description"]
    assert len(receiver.deliveries) == ITEMS and all(d.verified for d in receiver.deliveries)
    outcomes = read_history(open_store(str(env))).outcomes()
    assert [o["result"] for o in outcomes] == ["created"] * ITEMS
    assert {o["approval"]["approver"] for o in outcomes} == {"lee@example.com"}
    assert all(o["reason"].startswith("live: approved in the UI by lee@example.com at ") for o in outcomes)
    assert len(outcomes[0]["approval"]["shown"]) == ITEMS


def test_a_rejection_in_the_ui_simulates_and_names_the_approver(env, receiver: Receiver) -> None:
    approver = answer_when_paused({"approve": False, "approver": "sam", "note": "not today"}, {})
    state = pipeline.publish_flow(return_state=True)
    approver.join(5)
    assert state.is_completed(), state.message
    assert receiver.deliveries == []
    outcomes = read_history(open_store(str(env))).outcomes()
    assert [o["result"] for o in outcomes] == ["simulated"] * ITEMS
    assert all("(rejected in the UI by sam at " in o["reason"] for o in outcomes)
    assert outcomes[0]["approval"]["note"] == "not today"


def test_no_answer_before_the_timeout_simulates(env, receiver: Receiver, monkeypatch) -> None:
    monkeypatch.setenv("PUBLISH_APPROVAL_TIMEOUT_S", "3")
    seen: dict[str, Any] = {}
    watcher = answer_when_paused(None, seen)
    state = pipeline.publish_flow(return_state=True)
    watcher.join(5)
    assert "run" in seen  # it did pause, and nobody answered
    assert receiver.deliveries == []
    outcomes = read_history(open_store(str(env))).outcomes()
    assert [o["result"] for o in outcomes] == ["simulated"] * ITEMS
    assert all("no approver answered within 3 s" in o["reason"] for o in outcomes)
    assert state.is_completed(), state.message
    assert state.message.startswith(
        "to webhook: simulated: PUBLISH_APPROVAL_GRANTED is not truthy (no approver answered"
    )
    assert f"{ITEMS} planned: {ITEMS} simulated" in state.message
    with get_client(sync_client=True) as client:
        child = client.read_flow_run(seen["run"].id)  # the approval's own run ends, and says why
    assert child.state.is_completed(), child.state


def test_a_target_kept_as_a_block_is_published_to_by_its_name(env, receiver: Receiver, monkeypatch) -> None:
    from blocks import SignedWebhook

    SignedWebhook(url=receiver.url, secret=SECRET).save("shop-hook", overwrite=True)
    monkeypatch.setenv("PUBLISH_APPROVAL", "signals")
    monkeypatch.setenv("PUBLISH_APPROVAL_GRANTED", "1")
    monkeypatch.delenv("PUBLISH_WEBHOOK_URL")
    monkeypatch.delenv("PUBLISH_WEBHOOK_SECRET")
    state = pipeline.publish_flow(target="shop-hook", return_state=True)
    assert state.is_completed(), state.message
    assert len(receiver.deliveries) == ITEMS and all(d.verified for d in receiver.deliveries)
    assert {o["target"] for o in read_history(open_store(str(env))).outcomes()} == {"shop-hook"}
    missing = pipeline.publish_flow(target="no-such-target", return_state=True)
    assert missing.is_failed() and "no WordPressSite or SignedWebhook block by that name" in str(missing.message)


def test_a_policy_incident_forces_the_ui_approval_for_48_hours(env, receiver: Receiver, monkeypatch) -> None:
    from datetime import timedelta

    from content_pipeline.publish import window

    for name in ("ALLOW_AUTONOMOUS_PUBLISH", "PUBLISH_APPROVAL_GRANTED", "GOVERNANCE_APPROVED"):
        monkeypatch.setenv(name, "yes")
    monkeypatch.setenv("PUBLISH_APPROVAL", "signals")  # the signals alone would publish live
    start = window.now()
    window.require_approval(open_store(str(env)), 48, "quarantine of item-0009: policy breach", "ops")
    seen: dict[str, Any] = {}
    approver = answer_when_paused({"approve": False, "approver": "compliance@example.com"}, seen)
    state = pipeline.publish_flow(return_state=True)
    approver.join(5)
    assert "run" in seen and state.is_completed(), state.message  # it paused for an approver
    assert receiver.deliveries == []
    assert "a UI approval is required until " in state.message and "(rejected in the UI by compliance@" in state.message
    monkeypatch.setattr(window, "now", lambda: start + timedelta(hours=48, seconds=1))  # a test clock: no sleep
    asked = approval_runs()
    after = pipeline.publish_flow(return_state=True)
    assert after.is_completed() and f"{ITEMS} planned: {ITEMS} created" in after.message, after.message
    assert approval_runs() == asked and len(receiver.deliveries) == ITEMS  # nobody asked: the signals decided


def approval_runs() -> int:
    """How many `publish-approval` runs (an approver asked) the server has."""
    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["publish-approval"]))))


def test_a_ui_approval_for_a_window_lets_later_runs_go_out_without_asking(env, receiver: Receiver) -> None:
    from datetime import UTC, datetime, timedelta

    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    approver = answer_when_paused({"approve": True, "approver": "lee@example.com", "until": until}, {})
    first = pipeline.publish_flow(max_posts=1, return_state=True)
    approver.join(5)
    assert first.is_completed() and "1 planned: 1 created" in first.message, first.message
    asked = approval_runs()
    second = pipeline.publish_flow(max_posts=1, return_state=True)
    assert second.is_completed() and "1 planned: 1 created" in second.message, second.message
    assert approval_runs() == asked  # the window stood for the approver's yes
    outcomes = read_history(open_store(str(env))).outcomes()
    assert outcomes[-1]["reason"].startswith("live: approved until ") and "by lee@example.com" in outcomes[-1]["reason"]
