"""The stage commands a runbook runs one by one (inventory, batch, preflight, generate, consolidate, audit,
sync) and go-live: each returns its outcome, the one line an operator or a flow run's state shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from content_pipeline.claims.batch import run_lease
from content_pipeline.errors import AuditFailedError, BadInputError, PipelineError
from content_pipeline.intake.catalogue import Item
from content_pipeline.intake.items import read_items
from content_pipeline.money import to_usd
from content_pipeline.publish.command import Publishing
from content_pipeline.run import WHOLE_RUNS
from content_pipeline.run.generate import generate
from content_pipeline.run.golive import Replay, finish, go_live
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import Reporter
from content_pipeline.run.stages import Stages
from content_pipeline.settings import Settings
from content_pipeline.store import Store, layout


@dataclass(frozen=True)
class Outcome:
    """How a command ended: ok, and its summary line or the one-line reason it failed."""

    ok: bool
    message: str
    report: RunReport | None = None


def _run_items(stages: Stages, name: str, stage: str) -> list[Item]:
    """The items an earlier stage of this run wrote, or a clear line naming the command to run first."""
    items = read_items(stages.store, layout.run_key(stages.run_id, name))
    if items is None:
        run = stages.run_id
        raise BadInputError(f"run {run} has no {stage} output: run `content-pipeline {stage} --run-id {run}` first")
    return items


def inventory(stages: Stages) -> str:
    """The first step of a run by hand: a rescue file an earlier run left is imported first, as go-live does."""
    recovered = [] if stages.store.read_only else stages.recover()
    inv = stages.inventory()
    inv.catalogue.check(stages.settings.max_invalid_rows_share)
    counts = f"{inv.needing} item(s) need content; {len(inv.catalogue.invalid)} invalid row(s)"
    return f"run {stages.run_id}: {counts}" + "".join(f"; {line}" for line in recovered)


def batch(stages: Stages) -> str:
    """Claim up to LIMIT of the run's inventory under the batch-builder lease (fails at once when held)."""
    items = stages.batch(_run_items(stages, layout.NEEDS_CONTENT, "inventory"), hold=False)
    return f"run {stages.run_id}: claimed {len(items)} item(s)"


def preflight(stages: Stages) -> str:
    checked = stages.preflight()
    return f"run {stages.run_id}: {len(checked.items)} item(s) ready; dropped {dict(checked.dropped)}"


def generate_batch(stages: Stages) -> str:
    """Generate the run's preflighted batch under the run's lease, then release its claims."""
    report = RunReport.start(stages.settings, stages.store)
    items = _run_items(stages, layout.BATCH, "batch")
    if stages.store.read_only:
        fatal = generate(stages, items, report)
    else:
        lease = stages.lease = run_lease(stages.store, stages.run_id, stages.settings.lease_ttl_s)
        try:
            if items and not stages.adopt():
                raise BadInputError(
                    f"run {stages.run_id} holds no claims (expired or released): "
                    f"run `content-pipeline batch --run-id {stages.run_id}` again"
                )
            fatal = generate(stages, items, report)
            stages.release()
        finally:
            lease.release()
    if fatal is not None:
        raise fatal
    stats = report.stats
    return f"run {stages.run_id}: {stats.successes} success(es), {stats.rejects} reject(s), ${report.spend_usd:.4f}"


def consolidate(stages: Stages) -> str:
    """Rebuild master, indexes, usage and checkpoint from the ledger (idempotent); views changed by hand
    are written again."""
    result = stages.consolidate(verify=True)
    changed = ", ".join(result.changed) if result and result.changed else "nothing changed"
    return f"{result.records if result else 0} ledger records; {changed}"


def audit(stages: Stages) -> str:
    """Check every invariant; fails with one line per violation."""
    result = stages.audit()
    if not result.ok:
        raise AuditFailedError("\n".join(result.violations))
    return "all invariants hold"


def sync(stages: Stages) -> str:
    return "checkpoint rewritten from master" if stages.sync() else "checkpoint already matches master"


def collect_batches(stages: Stages) -> str:
    """Settle the finished Batch API batches, then (when anything was settled) consolidate, audit and sync
    as go-live does; the summary names what is still outstanding."""
    from content_pipeline.batches.collect import collect  # the Batch API's client, once it is used

    recovered = stages.recover()  # a rescue file an earlier collect left, in the ledger before it is read
    found = stages.reporter.stage("collect", lambda: collect(stages.store, stages.settings, stages.log))
    if found.settled:
        finish(stages, RunReport.start(stages.settings, stages.store))
    oldest = max((b.age_s for b in found.outstanding), default=0.0) / 3600
    parts = [
        f"{len(found.settled)} batch(es) settled: {found.successes} success(es), {found.rejects} reject(s), "
        f"{found.escalated} escalated, {found.already} already in the ledger, ${to_usd(found.spent_nano):.4f}",
        f"{len(found.outstanding)} outstanding" + (f" (oldest {oldest:.1f} h)" if found.outstanding else ""),
    ]
    if found.busy:
        parts.append(f"left to the processes holding them: {', '.join(found.busy)}")
    if found.held:
        parts.append(f"{len(found.held)} held as unknown, their answers unreadable (see health)")
    return "; ".join(parts + recovered)


def sweep(stages: Stages) -> str:
    """Release the leases and queued claims of runs that are gone, naming each (also logged); with
    EVIDENCE_ONLY, name what would be released."""
    swept = stages.sweep()
    released = "; ".join(swept.lines) or "nothing to release: no lease or claims of a gone run"
    return released + "".join(f"; kept: {line}" for line in swept.kept)


COMMANDS: dict[str, Callable[[Stages], str]] = {
    "inventory": inventory,
    "batch": batch,
    "preflight": preflight,
    "generate": generate_batch,
    "consolidate": consolidate,
    "audit": audit,
    "sync": sync,
    "sweep": sweep,
    "collect": collect_batches,
}


def run_command(
    name: str,
    settings: Settings,
    store: Store,
    reporter: Reporter,
    replay: Replay | None = None,
    publishing: Publishing | None = None,
) -> Outcome:
    """Run `name` (go-live, replay-failed with its `replay` window, or a stage command) to its outcome; an
    expected failure is a failed outcome with its line, anything else (a bug) goes up. go-live and
    replay-failed end with the publish stage when `publishing` is given."""
    if name in WHOLE_RUNS:
        chosen = replay if name == "replay-failed" else None
        report = go_live(settings, store, reporter, replay=chosen, publishing=publishing)
        return Outcome(report.ok, report.failure or "all invariants hold", report)
    try:
        return Outcome(True, COMMANDS[name](Stages(settings.with_run_id(), store, reporter)))
    except PipelineError as exc:
        return Outcome(False, str(exc))
