"""go-live as plain Python: the run lease, inventory, batch, preflight, generate, release, consolidate,
audit, sync, audit, and the report; a failure names its stage and the spend so far."""

from __future__ import annotations

import time

from content_pipeline.claims.batch import run_lease
from content_pipeline.errors import AuditFailedError, PipelineError
from content_pipeline.run.generate import generate
from content_pipeline.run.report import RunReport, run_rejects
from content_pipeline.run.reporter import Reporter
from content_pipeline.run.stages import Stages
from content_pipeline.settings import Settings
from content_pipeline.store import Store, layout


def go_live(settings: Settings, store: Store, reporter: Reporter) -> RunReport:
    """The whole run under its own lease; returns its report (`failure` set when it failed), which is also
    written to the store and published through the reporter."""
    started = time.perf_counter()
    settings = settings.with_run_id()
    stages = Stages(settings, store, reporter)
    report = RunReport.start(settings, store)
    claimed, lease = False, None
    try:
        lease = None if store.read_only else run_lease(store, stages.run_id, settings.lease_ttl_s)
        report.stage = "inventory"
        inv = stages.inventory()
        report.catalogue_rows, report.catalogue_valid = inv.catalogue.rows, len(inv.catalogue.items)
        report.invalid_rows = [r.line(settings.catalogue) for r in inv.catalogue.invalid]
        report.needs_content = len(inv.needs)
        report.notes += inv.repaired
        report.stage = "batch"
        items = stages.batch(inv.needs, hold=True)
        claimed, report.claimed = not store.read_only, len(items)
        report.stage = "preflight"
        checked = stages.preflight(items)
        report.preflight_dropped = dict(checked.dropped)
        report.stage = "generate"
        fatal = generate(stages, checked.items, report)
        if claimed:
            stages.release()
            claimed = False
        finish(stages, report)
        if fatal is not None:
            report.stage = "generate"
            raise fatal
    except PipelineError as exc:
        report.fail(exc)
    finally:
        if claimed:
            stages.release()
        if lease is not None:
            lease.release()
        report.duration_s = time.perf_counter() - started
        report.requests = store.request_counts()
        publish(stages, report)
    audit = {None: "not run", True: "green", False: "FAILED"}[report.audit_ok]
    stats = report.stats
    stages.log(
        f"run {report.run_id}: {stats.successes} success(es), {stats.rejects} reject(s), "
        f"${report.spend_usd:.4f} of ${report.budget_usd:.2f}, audit {audit}"
    )
    return report


def finish(stages: Stages, report: RunReport) -> None:
    """consolidate, audit, sync, audit; raises AuditFailedError when either audit fails."""
    report.stage = "consolidate"
    stages.consolidate()
    report.consolidations += 1
    report.stage = "audit"
    first = stages.audit()
    report.stage = "sync"
    stages.sync()
    report.stage = "audit"
    final = stages.audit()
    report.audit_ok = first.ok and final.ok
    report.audit_violations = final.violations or first.violations
    report.notes += final.notes
    if not report.audit_ok:
        raise AuditFailedError(
            f"audit failed: {len(report.audit_violations)} violation(s); first: {report.audit_violations[0]}"
        )


def publish(stages: Stages, report: RunReport) -> None:
    """The report in the store (unless read-only) and through the reporter, with the run's rejects."""
    store, markdown = stages.store, report.markdown()
    if store.read_only:
        stages.log(f"EVIDENCE_ONLY run report (not stored):\n{markdown}")
    else:
        store.put(layout.run_key(report.run_id, layout.REPORT), markdown.encode())
    stages.reporter.publish(report, run_rejects(store, report.run_id))
