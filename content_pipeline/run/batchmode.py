"""The generate stage in batch mode: the run's plans a crash left unsent submitted first, then its items planned
(their worst case reserved at the batch price) and submitted; `collect` settles them later."""

from __future__ import annotations

import logging

from content_pipeline.batches.provider import BatchProvider
from content_pipeline.batches.submit import Submitted, first_requests, plan_batches, submit_plans
from content_pipeline.claims.pending import outstanding_nano
from content_pipeline.errors import PipelineError
from content_pipeline.generation.budget import RunBudget
from content_pipeline.generation.templates import active_templates
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.inflight import booked_at_crash
from content_pipeline.money import to_usd, usd
from content_pipeline.run.report import RunReport
from content_pipeline.run.stages import Stages
from content_pipeline.views.snapshot import read_usage


def submit_batches(stages: Stages, items: list[Item], report: RunReport) -> PipelineError | None:
    """Plan and submit the run's items; returns the error that stopped it, if any (what was planned stays
    pending: a go-live under the same run id, or collect, submits it)."""
    settings, store, run_id = stages.settings, stages.store, stages.run_id
    result = Submitted()
    report.batches = result
    try:
        provider = BatchProvider(settings)
        guard = stages.lease.check if stages.lease is not None else None
        submit_plans(provider, store, run_id, result, guard)  # what a crash of this run left planned but unsent
        if items:
            provider.check()  # a server with no Batch API says so before anything is planned or reserved
            usage = read_usage(store)
            prior = usage["by_run"].get(run_id, {}).get("cost_nano", 0) + booked_at_crash(store, usage).of(run_id)
            budget = RunBudget(settings.budget_usd, to_usd(prior + outstanding_nano(store, run_id)))
            wanted = first_requests(items, active_templates(store))
            _, planned = plan_batches(store, settings, run_id, wanted, settings.model, budget)
            result.planned += planned.planned
            result.requests += planned.requests
            result.reserved_nano += planned.reserved_nano
            result.left_out, result.stop_reason = planned.left_out, planned.stop_reason
            report.stop_reason = planned.stop_reason
            report.stats.not_attempted += planned.left_out
            submit_plans(provider, store, run_id, result, guard)
    except PipelineError as exc:
        stages.log(f"generate (batch) stopped: {exc}", logging.ERROR)
        return exc
    finally:
        stages.log(_line(result))
    return None


def _line(result: Submitted) -> str:
    found = f"; {len(result.found_again)} found again by listing (created before a crash)" if result.found_again else ""
    left = f"; {result.left_out} left for the budget" if result.left_out else ""
    return (
        f"generate (batch): {result.requests} request(s) planned in {len(result.planned)} batch(es), "
        f"{len(result.submitted)} submitted{found}, {usd(to_usd(result.reserved_nano))} reserved at the batch "
        f"price{left}; `content-pipeline collect` settles them"
    )
