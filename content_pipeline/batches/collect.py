"""Collect: every outstanding batch polled; a finished one's answers judged and appended to the ledger (each
once), its QA failures escalated, then marked collected. Each run's batches are worked under the run's lease."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from content_pipeline.batches.escalate import escalate
from content_pipeline.batches.held import hold
from content_pipeline.batches.provider import RUNNING, BatchProvider
from content_pipeline.batches.results import Answer, ResultFiles, judged, recorded_ids
from content_pipeline.batches.submit import Submitted, Wanted, ensure_submitted
from content_pipeline.claims.batch import run_lease
from content_pipeline.claims.pending import PlannedRequest, PlanState, mark_collected, outstanding_nano, read_plans
from content_pipeline.errors import LeaseHeldError, LedgerUnwritableError
from content_pipeline.generation.budget import RunBudget
from content_pipeline.generation.context import GenerationContext, open_generation
from content_pipeline.ledger.records import OutcomeRecord
from content_pipeline.money import to_nano, to_usd
from content_pipeline.settings import Settings
from content_pipeline.store import Store
from content_pipeline.store.lease import Lease


@dataclass(frozen=True)
class Outstanding:
    """A batch still running at the provider: its run, name, id, state, age and size."""

    run_id: str
    name: str
    batch_id: str
    status: str
    age_s: float
    requests: int

    def line(self) -> str:
        hours = self.age_s / 3600
        return (
            f"{self.run_id}/{self.name} ({self.batch_id}): {self.status}, {self.requests} request(s), {hours:.1f} h old"
        )


@dataclass
class Collected:
    """What one collect did: batches settled and still running, outcomes appended, escalations planned,
    outcomes already in the ledger (a collect resumed), runs another process was working, the spend, and the
    batches held because their answers could not be read (one line each)."""

    settled: list[str] = field(default_factory=list)
    outstanding: list[Outstanding] = field(default_factory=list)
    successes: int = 0
    rejects: int = 0
    escalated: int = 0
    already: int = 0
    busy: list[str] = field(default_factory=list)
    submitted: Submitted = field(default_factory=Submitted)
    spent_nano: int = 0
    held: list[str] = field(default_factory=list)

    def count(self, record: OutcomeRecord) -> None:
        if record.status == "success":
            self.successes += 1
        else:
            self.rejects += 1
        self.spent_nano += to_nano(record.cost_usd)


def collect(store: Store, settings: Settings, log: Callable[[str], None]) -> Collected:
    """Poll every outstanding batch and settle the finished ones; a run whose lease another process holds
    (its go-live still submitting, or another collect) is left to it. A collect paused past its lease and
    taken over stops with LeaseLostError before its next append or batch created."""
    result = Collected()
    runs = sorted({state.plan.run_id for state in read_plans(store)})
    if not runs:  # nothing outstanding: no provider needed (the schedule runs it on offline stores too)
        return result
    provider = BatchProvider(settings)
    for run_id in runs:
        try:
            lease = run_lease(store, run_id, settings.lease_ttl_s)
        except LeaseHeldError as exc:
            result.busy.append(run_id)
            log(f"collect: run {run_id} left to the process that holds it: {exc}")
            continue
        try:
            for state in read_plans(store, run_id):  # read again under the lease
                _one(provider, store, settings, state, result, log, lease)
        finally:
            lease.release()
    return result


def _one(
    provider: BatchProvider,
    store: Store,
    settings: Settings,
    state: PlanState,
    result: Collected,
    log: Callable[[str], None],
    lease: Lease,
) -> None:
    plan = state.plan
    batch_id = ensure_submitted(provider, store, state, result.submitted, lease.check)
    batch = provider.retrieve(batch_id)
    age = max(0.0, time.time() - float(batch.created_at or time.time()))
    if batch.status in RUNNING:
        result.outstanding.append(Outstanding(plan.run_id, plan.name, batch_id, batch.status, age, len(plan.requests)))
        return
    files = ResultFiles(provider, batch)
    why = settle(provider, store, settings, state, files.answers(), batch.status, result, log, lease, files.missing)
    if why is not None:  # answered requests unread: unknown outcomes, their reservation kept, tried again
        held = hold(store, plan, batch_id, why)
        status = f"{batch.status}, answers held as unknown"
        result.outstanding.append(Outstanding(plan.run_id, plan.name, batch_id, status, age, len(plan.requests)))
        result.held.append(held.line())
        log(f"collect: {held.line()}; the next collect tries again")


def settle(
    provider: BatchProvider,
    store: Store,
    settings: Settings,
    state: PlanState,
    found: Iterable[tuple[str, Answer]],
    batch_status: str,
    result: Collected,
    log: Callable[[str], None],
    lease: Lease,
    missing: Callable[[], str | None] = lambda: None,
) -> str | None:
    """Each request's outcome appended to the ledger as its answer arrives (unless it is there already), the
    requests with no answer rejected with a retryable cause, the QA failures escalated, and the plan marked
    collected once all of that is durable. When `missing` names answered requests that could not be read,
    only what was read is appended and the plan stays outstanding: the reason is returned. Every append,
    escalation and the mark are made only while `lease` still holds."""
    plan = state.plan
    where = f"batch {plan.run_id}/{plan.name}"
    run_settings = settings.model_copy(update={"run_id": plan.run_id, "budget_usd": plan.budget_usd})
    ctx = open_generation(store, run_settings, plan.run_id)
    if ctx.ledger is not None:
        ctx.ledger.guard = lambda: lease.check(f"appending an outcome of {where} to the ledger")
    requests = {request.record_id: request for request in plan.requests}
    why: str | None = None
    try:
        recorded = recorded_ids(store, plan.run_id)
        result.already += sum(rid in recorded for rid in requests)
        pending, wanted, spent = [], [], 0

        def take(request: PlannedRequest, answer: Answer | None) -> None:
            nonlocal spent
            outcome = judged(ctx, store, plan, request, answer, batch_status)
            if isinstance(outcome, Wanted):
                wanted.append(outcome)
                spent += sum(to_nano(call.cost_usd) for call in outcome.calls)
                return
            assert ctx.ledger is not None
            pending.append(ctx.ledger.submit(outcome.line()))
            result.count(outcome)
            spent += to_nano(outcome.cost_usd)

        for custom_id, answer in found:
            request = requests.pop(custom_id, None)
            if request is not None and custom_id not in recorded:
                take(request, answer)
        why = missing()
        for custom_id, request in requests.items() if why is None else ():  # the batch ended without them
            if custom_id not in recorded:
                take(request, None)
        for future in pending:
            future.result()
        if wanted and why is None:
            lease.check(f"escalating {len(wanted)} request(s) of {where}")
            ctx.budget = _budget(store, ctx, plan.reserved_nano, spent)
            escalate(provider, store, run_settings, ctx, plan, wanted, result, lease.check)
    finally:
        ctx.close()
    if ctx.ledger is not None and ctx.ledger.failure is not None:
        raise ctx.ledger.failure
    if ctx.fatal is not None and not isinstance(ctx.fatal, LedgerUnwritableError):
        raise ctx.fatal
    if why is not None:
        return why
    lease.check(f"marking {where} collected")
    mark_collected(store, plan, {"status": batch_status, "requests": len(plan.requests), "at": time.time()})
    result.settled.append(f"{plan.run_id}/{plan.name}")
    log(f"collect: {plan.run_id}/{plan.name} {batch_status}: {len(plan.requests)} request(s) settled")
    return None


def _budget(store: Store, ctx: GenerationContext, reserved_nano: int, settled_nano: int) -> RunBudget:
    """The run's budget for escalations: its ledger spend, what this batch's answers cost (those just
    appended and those escalated), what its crashed calls may have cost, and what its other outstanding
    batches reserved."""
    others = outstanding_nano(store, ctx.run_id) - reserved_nano
    spent = ctx.budget.spent + settled_nano + max(others, 0)
    return RunBudget(to_usd(ctx.budget.limit), to_usd(spent))
