"""Batch plans: the requests a run sent (or is sending) to the Batch API, each under the id its outcome record
will have; an item in a plan not yet collected is pending, and no run generates it meanwhile."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from content_pipeline.errors import StoreError
from content_pipeline.ledger.records import Call
from content_pipeline.money import to_usd
from content_pipeline.store import Store, layout


class PlannedRequest(BaseModel):
    """One request of a batch: its custom_id is the id its outcome record will have."""

    record_id: str
    slug: str
    item: dict[str, Any] = Field(description="the item as its prompt was made from it")
    template: str = Field(description="the template key (id:version) the prompt came from")
    worst_nano: int = Field(ge=0, description="the most it can cost, at the batch price")
    calls: list[Call] = Field(default_factory=list, description="calls paid for the item before this one")
    started_at: str


class BatchPlan(BaseModel):
    """One batch of one run: its requests to one model, attempt 1 (the first model) or 2 (an escalation),
    and the run's budget, which its reservation counts against."""

    run_id: str
    name: str
    model: str
    attempt: int = Field(ge=1, le=2)
    budget_usd: float
    requests: list[PlannedRequest]
    created_at: str
    canary: str = Field("", description="the canary in its system messages (empty: a plan made before canaries)")

    @property
    def reserved_nano(self) -> int:
        return sum(r.worst_nano for r in self.requests)

    @property
    def digest(self) -> str:
        """Names the plan in the batch's metadata (so a batch created for it is found again by listing); a
        plan made before canaries keeps the digest it had."""
        body = self.model_dump_json(exclude=None if self.canary else {"canary"})
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass
class PlanState:
    """A plan and how far it got: its batch's id once recorded, and whether its outcomes are collected."""

    plan: BatchPlan
    batch_id: str | None
    collected: bool


def write_plan(store: Store, plan: BatchPlan, input_jsonl: bytes) -> None:
    """The input file, then the plan (which makes its items pending); neither is ever rewritten."""
    store.put_if_absent(layout.batch_key(plan.run_id, plan.name, layout.BATCH_INPUT), input_jsonl)
    store.put_if_absent(layout.batch_key(plan.run_id, plan.name, layout.BATCH_PLAN), plan.model_dump_json().encode())


def record_batch(store: Store, plan: BatchPlan, batch_id: str) -> str:
    """Record the batch created for `plan` (the first record stands: a plan has one batch); its id."""
    key = layout.batch_key(plan.run_id, plan.name, layout.BATCH_SUBMITTED)
    store.put_if_absent(key, json.dumps({"batch_id": batch_id, "digest": plan.digest}).encode())
    return _batch_id(store, key) or batch_id


def mark_collected(store: Store, plan: BatchPlan, outcome: dict[str, Any]) -> None:
    store.put_if_absent(layout.batch_key(plan.run_id, plan.name, layout.BATCH_COLLECTED), json.dumps(outcome).encode())


def _batch_id(store: Store, key: str) -> str | None:
    raw = store.get(key)
    if raw is None:
        return None
    try:
        return str(json.loads(raw)["batch_id"])
    except (ValueError, KeyError, TypeError):
        raise StoreError(f"batch record {key} is damaged (not the batch id the pipeline writes)") from None


def read_plans(store: Store, run_id: str | None = None, *, collected: bool = False) -> list[PlanState]:
    """The plans in the store (of `run_id`, or every run), oldest name first, with how far each got; with
    `collected` False, only those whose outcomes are not all in the ledger yet. A damaged plan is one line."""
    prefix = layout.BATCHES_PREFIX + (f"{run_id}/" if run_id else "")
    parts: dict[tuple[str, str], set[str]] = {}
    for info in store.list(prefix):
        pieces = info.key.removeprefix(layout.BATCHES_PREFIX).split("/")
        if len(pieces) == 3:
            parts.setdefault((pieces[0], pieces[1]), set()).add(pieces[2])
    states = []
    for (run, name), present in sorted(parts.items()):
        done = layout.BATCH_COLLECTED in present
        if layout.BATCH_PLAN not in present or (done and not collected):
            continue
        key = layout.batch_key(run, name, layout.BATCH_PLAN)
        try:
            plan = BatchPlan.model_validate_json(store.get(key) or b"")
        except ValidationError:
            raise StoreError(f"batch plan {key} is damaged (not a plan the pipeline writes)") from None
        batch_id = _batch_id(store, layout.batch_key(run, name, layout.BATCH_SUBMITTED))
        states.append(PlanState(plan, batch_id, done))
    return states


def pending_slugs(store: Store) -> set[str]:
    """The items of every plan not yet collected: sent (or being sent) to the Batch API, not yet settled."""
    return {request.slug for state in read_plans(store) for request in state.plan.requests}


def outstanding_nano(store: Store, run_id: str) -> int:
    """What the run's uncollected plans reserved (at the batch price), counted against its budget."""
    return sum(state.plan.reserved_nano for state in read_plans(store, run_id))


def outstanding(store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each plan not collected yet: run, name, batch id (None: not submitted yet), requests, money reserved
    and age in seconds (since it was planned), oldest first (for status and health)."""
    moment = now or datetime.now(UTC)
    rows = []
    for state in read_plans(store):
        plan = state.plan
        age = (moment - datetime.fromisoformat(plan.created_at)).total_seconds()
        rows.append(
            {
                "run_id": plan.run_id,
                "name": plan.name,
                "batch_id": state.batch_id,
                "requests": len(plan.requests),
                "reserved_usd": round(to_usd(plan.reserved_nano), 9),
                "age_s": round(max(age, 0.0), 1),
            }
        )
    return sorted(rows, key=lambda row: -row["age_s"])
