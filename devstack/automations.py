"""The stack's automations: failed or crashed runs announced, and runs whose heartbeats stopped marked Crashed.
Run inside the stack's environment (a Prefect API configured), by `Stack.configure`."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from prefect.automations import Automation, EventTrigger, Posture, SendNotification
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState

from flows.pipeline import FLOWS

AUTOMATION = "content-pipeline: announce failed or crashed runs via {block}"
CRASH_AUTOMATION = "content-pipeline: mark runs whose heartbeats stopped Crashed"
SILENT_BEATS = 4  # heartbeats missed before a run is marked Crashed: after its run lease (LEASE_TTL_S) expired
NOTIFY_BODY = """content-pipeline run {{ flow_run.name }} ({{ flow.name }}/{{ deployment.name }}) is {{ flow_run.state.name }}.
Run: {{ flow_run|ui_url }}
What failed (a go-live: its stage, the error and the spend so far): {{ flow_run.state.message }}
Parameters: {{ flow_run.parameters }}"""


def replace(name: str) -> None:
    """Delete every automation called `name`: a second `make up` replaces them, never duplicates them."""
    while True:
        try:
            Automation.read(name=name).delete()
        except ValueError:
            return


def crash_silent_runs() -> str:
    """The automation that marks a run of the project's flows Crashed once SILENT_BEATS of its heartbeats did
    not come (its host or process died): Prefect then frees its deployment's slot and its concurrency slots,
    the failure automation announces it, and the next run of that deployment starts with no one acting."""
    silent = SILENT_BEATS * int(os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])
    replace(CRASH_AUTOMATION)
    ends = ("Completed", "Failed", "Cancelled", "Crashed", "Suspended")  # (a paused run beats on)
    Automation(
        name=CRASH_AUTOMATION,
        description=f"A run of the project's flows that sent no heartbeat for {silent} s is marked Crashed.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{state}" for state in ends)},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": sorted(FLOWS)},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silent),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {silent} s: its host or process died (marked by {CRASH_AUTOMATION!r})",
            )
        ],
    ).create()
    return CRASH_AUTOMATION


def announce_failures(block_type: Any, block_name: str) -> str:
    """The automation that announces every failed or crashed run of the project's flows through the saved
    notification block `block_name`, with its UI link."""
    name = AUTOMATION.format(block=block_name)
    replace(name)
    Automation(
        name=name,
        description="Announces every failed or crashed run of the project's flows, with its UI link.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": sorted(FLOWS)},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_type.load(block_name)._block_document_id,
                subject="content-pipeline: {{ flow.name }} run {{ flow_run.name }} {{ flow_run.state.name }}",
                body=NOTIFY_BODY,
            )
        ],
    ).create()
    return name
