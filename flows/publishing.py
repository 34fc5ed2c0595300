"""The edge of publishing: the target a name stands for (the settings' built-in ones, else a block), and
the approver asked in the Prefect UI (`pause_flow_run(wait_for_input=...)`) when PUBLISH_APPROVAL=ui."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from content_pipeline.errors import BadInputError
from content_pipeline.publish.connect import BUILT_IN, configured, target_from_settings
from content_pipeline.publish.governance import Approval
from content_pipeline.publish.plan import Candidate, Plan
from content_pipeline.publish.targets import Target
from content_pipeline.settings import Settings
from flows.named_block import named_block

POLL_S = 2  # how often a paused publish run looks for the approver's answer
SHOWN_MAX = 200  # rows of the approval form's table (the artifact lists every post)


def _block_target(name: str) -> Target | None:
    """The WordPressSite or SignedWebhook block called `name`, as a target; None when there is none."""
    from blocks import SignedWebhook, WordPressSite

    block = named_block((WordPressSite, SignedWebhook), name, "publish target", BadInputError)
    return None if block is None else block.target(name)


class EdgePublishing:
    """Targets and approvals for one command or flow run. `api_url`: the Prefect API holding the blocks
    (None: only the settings' targets); `in_flow`: a flow run whose pause an approver can answer."""

    def __init__(self, settings: Settings, api_url: str | None, in_flow: bool) -> None:
        self.settings, self.api_url, self.in_flow = settings, api_url, in_flow

    def target(self, name: str) -> Target | None:
        if name in BUILT_IN and configured(self.settings, name):
            return target_from_settings(self.settings, name)
        found = _block_target(name) if self.api_url is not None else None
        if found is None and name not in BUILT_IN:
            where = "" if self.api_url is not None else " (no Prefect API is configured to hold blocks)"
            raise BadInputError(f"publish target {name!r}: no WordPressSite or SignedWebhook block by that name{where}")
        return found

    def approve(self, the_plan: Plan, target: str) -> Approval | None:
        if not self.in_flow:
            return None
        return ask_approver(the_plan, target, self.settings.publish_approval_timeout_s)


def approval_markdown(the_plan: Plan, target: str) -> str:
    """What the approver is shown: count, target, and a table of slugs, titles and payload hashes."""
    posts = the_plan.candidates
    rows = [
        f"| {c.post.slug} | {c.post.title.replace('|', '/')} | `{c.post.content_hash[:16]}` | "
        f"{'update' if c.update else 'new'}{', written by the fallback model' if c.fallback else ''} | {_slot(c)} |"
        for c in posts[:SHOWN_MAX]
    ]
    more = (
        [f"\n… and {len(posts) - SHOWN_MAX} more (the `publish-plan` artifact lists every post)"]
        if len(posts) > SHOWN_MAX
        else []
    )
    head = f"**{len(posts)} post(s) would go out live to `{target}`.** Approve to publish them in this run; reject to simulate."
    table = ["| slug | title | payload hash | | goes live |", "|---|---|---|---|---|"]
    return "\n".join([head, "", *table, *rows, *more])


def _slot(cand: Candidate) -> str:
    """When the post goes live: its posting plan's slot (UTC), or at once."""
    return f"{cand.slot:%Y-%m-%d %H:%M} UTC" if cand.slot else "at once"


def _run_on() -> None:
    """Take this flow run out of its pause once the wait is over (the server would not let a paused run
    complete), so it goes on to simulate every post and ends with the reason."""
    from prefect import get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.states import Running

    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(context.flow_run.id, Running(message="no approver answered"), force=True)
    get_run_logger().warning("publish: no approver answered in time: every post of this run is simulated")


def ask_approver(the_plan: Plan, target: str, timeout_s: float) -> Approval:
    """Ask the approver in a child flow run of its own (`publish-approval`), paused until the form is answered
    or `timeout_s` passes (not approved). The child has no deployment, so the calling run stays Running and
    keeps its deployment's concurrency slot for the whole wait: Prefect revokes the slot of a run that
    pauses itself, and its engine then crashes the run (410 Gone) about five minutes into the wait."""
    from prefect import flow, get_run_logger

    count = len(the_plan.candidates)
    name = f"approve {count} post(s) to {target}".replace("{", "{{").replace("}", "}}")  # a template to Prefect

    @flow(name="publish-approval", flow_run_name=name)
    def publish_approval() -> Approval:
        return _wait_for_answer(the_plan, target, timeout_s)

    get_run_logger().info(
        "publish: %d post(s) wait for an approver for up to %s s: Resume the paused run %r (flow publish-approval,"
        " under this run's Subflow Runs)",
        count,
        f"{timeout_s:g}",
        f"approve {count} post(s) to {target}",
    )
    return publish_approval()


def _wait_for_answer(the_plan: Plan, target: str, timeout_s: float) -> Approval:
    """Pause this flow run until an approver answers the form (or `timeout_s` passes: not approved)."""
    from prefect.artifacts import create_table_artifact
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run
    from prefect.input import RunInput

    class PublishApproval(RunInput):
        approve: bool = Field(default=False, description="Yes: publish exactly these posts live in this run")
        approver: str = Field(min_length=1, max_length=200, description="Your name or e-mail, kept with the posts")
        note: str = Field(default="", max_length=1000, description="Why (kept with the approval)")
        until: datetime | None = Field(
            default=None,
            description="Approve a window: later runs go out live without asking until this time (UTC when no zone)",
        )

    shown = tuple(f"{c.post.slug}:{c.post.content_hash}" for c in the_plan.candidates)
    table = [
        {"slug": c.post.slug, "title": c.post.title, "payload_hash": c.post.content_hash, "goes_live": _slot(c)}
        for c in the_plan.candidates
    ]
    create_table_artifact(table=table, key="publish-plan", description=f"what would go out to {target}")
    form = PublishApproval.with_initial_data(description=approval_markdown(the_plan, target), approve=False)
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=max(1, int(timeout_s)), poll_interval=POLL_S)
    except FlowPauseTimeout:
        _run_on()
        at = datetime.now(UTC).isoformat(timespec="seconds")
        return Approval(False, None, at, f"no approver answered within {timeout_s:g} s")
    at = datetime.now(UTC).isoformat(timespec="seconds")
    until = None if answer.until is None else answer.until.isoformat()
    return Approval(bool(answer.approve), answer.approver.strip() or None, at, answer.note, shown, until)
