"""Submission: a run's items planned into batches (each request's worst case reserved at the batch price, split
at the provider's limits), the plans stored, then each batch created once and its id recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from content_pipeline.claims.pending import BatchPlan, PlannedRequest, PlanState, read_plans, record_batch, write_plan
from content_pipeline.configs import BatchConfig
from content_pipeline.generation import prompts
from content_pipeline.generation.budget import BudgetExhausted, RunBudget, call_worst_nano
from content_pipeline.generation.content import RESPONSE_FORMAT
from content_pipeline.generation.qa import Verdict
from content_pipeline.generation.templates import PromptTemplate, TemplateSet, load_template
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.records import Call, new_record_id
from content_pipeline.llm.client import chat_body
from content_pipeline.money import PriceTable
from content_pipeline.store import Store, layout

if TYPE_CHECKING:
    from content_pipeline.batches.provider import BatchProvider

ENDPOINT = "/v1/chat/completions"  # what every request of a batch calls


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Wanted:
    """One request to plan: an item, its template, the model, and what was paid for it before (an
    escalation's first answer) under the record id it keeps."""

    item: Item
    template: str
    calls: list[Call] = field(default_factory=list)
    record_id: str = field(default_factory=new_record_id)
    started_at: str = field(default_factory=now)
    failed: Verdict | None = None  # why the first answer is escalated (QA's verdict)


@dataclass
class Submitted:
    """What a submission did: the batches it planned and submitted, requests and money reserved, the items
    the budget left out, and the batches a lost answer had hidden (found again by listing)."""

    planned: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    found_again: list[str] = field(default_factory=list)
    requests: int = 0
    reserved_nano: int = 0
    left_out: int = 0
    stop_reason: str | None = None


def request_line(settings: BatchConfig, record_id: str, model: str, msgs: list[dict[str, str]]) -> bytes:
    """One line of a batch's input file: custom_id is the outcome record's id."""
    body = chat_body(settings, model, msgs, RESPONSE_FORMAT)
    line = {"custom_id": record_id, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _cut(lines: list[tuple[PlannedRequest, bytes]], settings: BatchConfig) -> list[list[tuple[PlannedRequest, bytes]]]:
    """Requests in batches of at most BATCH_MAX_REQUESTS requests and BATCH_MAX_BYTES bytes."""
    batches: list[list[tuple[PlannedRequest, bytes]]] = []
    size = 0
    for request, line in lines:
        if (
            not batches
            or len(batches[-1]) >= settings.batch_max_requests
            or size + len(line) > settings.batch_max_bytes
        ):
            batches.append([])
            size = 0
        batches[-1].append((request, line))
        size += len(line)
    return batches


def plan_batches(
    store: Store,
    settings: BatchConfig,
    run_id: str,
    wanted: list[Wanted],
    model: str,
    budget: RunBudget,
    escalating: str | None = None,
    canary: str = "",
) -> tuple[list[BatchPlan], Submitted]:
    """Plan `wanted` on `model`: each request's worst case (at the batch price) reserved against `budget`
    in turn, those that do not fit left out; stored as plans numbered after the run's last one (or, for
    the escalations of the batch `escalating`, after its escalations so far). Every system message carries
    `canary` (a new one when none is given), which the plans keep for collect's QA. Nothing is sent yet."""
    prices, result = PriceTable(settings.price_table), Submitted()
    canary = canary or prompts.new_canary()
    lines: list[tuple[PlannedRequest, bytes]] = []
    templates: dict[str, PromptTemplate] = {}
    for want in wanted:
        if want.template not in templates:
            templates[want.template] = load_template(store, want.template)
        msgs = prompts.messages(want.item, templates[want.template], canary)
        worst = call_worst_nano(prices, settings, model, msgs, batch=True)
        try:
            budget.reserve(worst)
        except BudgetExhausted as exc:
            result.stop_reason, result.left_out = str(exc), len(wanted) - len(lines)
            break
        request = PlannedRequest(
            record_id=want.record_id,
            slug=want.item.slug,
            item=want.item.model_dump(mode="json"),
            template=want.template,
            worst_nano=worst,
            calls=want.calls,
            started_at=want.started_at,
        )
        lines.append((request, request_line(settings, want.record_id, model, msgs)))
    names = [s.plan.name for s in read_plans(store, run_id, collected=True)]
    prefix = f"{escalating}-escalation-" if escalating else ""
    taken = sum(name.startswith(prefix) for name in names) if escalating else len(names)
    plans = []
    for n, chunk in enumerate(_cut(lines, settings), start=taken + 1):
        plan = BatchPlan(
            run_id=run_id,
            name=f"{prefix}{n:04d}" if not escalating else f"{prefix}{n}",
            model=model,
            attempt=2 if escalating else 1,
            budget_usd=settings.budget_usd,
            requests=[request for request, _ in chunk],
            created_at=now(),
            canary=canary,
        )
        write_plan(store, plan, b"".join(line for _, line in chunk))
        plans.append(plan)
        result.planned.append(plan.name)
        result.requests += len(chunk)
        result.reserved_nano += plan.reserved_nano
    return plans, result


def first_requests(items: list[Item], templates: TemplateSet) -> list[Wanted]:
    """Each item's first request, on the template its slug is assigned."""
    return [Wanted(item, templates.for_slug(item.slug).key) for item in items]


def ensure_submitted(
    provider: BatchProvider,
    store: Store,
    state: PlanState,
    result: Submitted,
    guard: Callable[[str], None] | None = None,
) -> str:
    """The plan's batch: recorded already; or created before a crash (or a lost answer) and found by its
    metadata; or uploaded and created now, `guard` (a lease's check) called right before the create. Its id
    is recorded before anything else is done with it."""
    plan = state.plan
    if state.batch_id is not None:
        return state.batch_id
    metadata = {"run_id": plan.run_id, "batch": plan.name, "plan": plan.digest, "source": "content-pipeline"}
    found = provider.find(metadata)
    if found is not None:
        result.found_again.append(plan.name)
        return record_batch(store, plan, found)
    data = store.get(layout.batch_key(plan.run_id, plan.name, layout.BATCH_INPUT)) or b""
    file_id = provider.upload(f"{plan.run_id}-{plan.name}.jsonl", data)
    if guard is not None:
        guard(f"creating the batch {plan.run_id}/{plan.name}")
    batch_id = record_batch(store, plan, provider.create(file_id, metadata))
    result.submitted.append(plan.name)
    return batch_id


def submit_plans(
    provider: BatchProvider,
    store: Store,
    run_id: str,
    result: Submitted,
    guard: Callable[[str], None] | None = None,
) -> None:
    """Every plan of the run not submitted yet, submitted (a plan is never submitted twice); `guard` (the
    run lease's check) called right before each create."""
    for state in read_plans(store, run_id):
        if state.batch_id is None:
            ensure_submitted(provider, store, state, result, guard)
