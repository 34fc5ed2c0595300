"""go-live as plain Python: the run lease, recover, sweep, inventory, batch, preflight, generate, release, consolidate,
audit, sync, audit, publish, and the report; a failure names its stage and the spend so far."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from content_pipeline.claims.batch import run_lease
from content_pipeline.errors import AuditFailedError, LedgerUnwritableError, PipelineError, StoreError
from content_pipeline.intake.inventory import find_items
from content_pipeline.ledger.spend import stamp
from content_pipeline.money import usd
from content_pipeline.publish.command import Publishing, publish_stage
from content_pipeline.run.generate import generate
from content_pipeline.run.report import RunReport, run_rejects
from content_pipeline.run.reporter import Reporter
from content_pipeline.run.stages import Stages
from content_pipeline.settings import Settings
from content_pipeline.store import Store, layout
from content_pipeline.store.lease import Lease


class Replay(Protocol):
    """Which rejects a replay generates again (ops/replay.py)."""

    def choose(self, store: Store) -> dict[str, str]:
        """slug -> cause, read once the views are current (after the run's inventory)."""
        ...

    since_hours: float

    def describe(self, chosen: dict[str, str], in_catalogue: int) -> str:
        """The report's note: what was chosen, and how many of those the catalogue still lists."""
        ...


def go_live(
    settings: Settings,
    store: Store,
    reporter: Reporter,
    replay: Replay | None = None,
    publishing: Publishing | None = None,
) -> RunReport:
    """The whole run under its own lease; returns its report (`failure` set when it failed), which is also
    written to the store and published through the reporter. With `replay`, the run generates only the
    rejects it names (chosen once the views are current) instead of what needs content, and publishes only
    the posts whose publish failed in its window. With `publishing`, the publish stage runs last."""
    started = time.perf_counter()
    settings = settings.with_run_id()
    stages = Stages(settings, store, reporter)
    report = RunReport.start(settings, store)
    claimed, lease = False, None
    try:
        lease = None if store.read_only else run_lease(store, stages.run_id, settings.lease_ttl_s)
        stages.lease = lease
        if not store.read_only:
            report.stage = "recover"
            report.notes += stages.recover()
        report.stage = "sweep"  # what gone runs left claimed needs content again before this run claims
        report.notes += stages.sweep().lines
        report.stage = "inventory"
        inv = stages.inventory(want=settings.limit)
        tally = inv.catalogue
        report.catalogue_rows, report.catalogue_valid, report.catalogue_complete = (
            tally.rows,
            tally.valid,
            tally.complete,
        )
        report.invalid_rows = [r.line(settings.catalogue) for r in tally.invalid]
        report.notes += inv.repaired
        tally.check(settings.max_invalid_rows_share)
        needs, report.changed = inv.needs, len(inv.changed)
        if replay is not None:
            chosen = replay.choose(store)
            stages.retry = frozenset(chosen)
            needs = find_items(settings.catalogue, stages.retry, settings.s3_options())
            report.notes.append(replay.describe(chosen, len(needs)))
        report.needs_content = inv.needing if replay is None else len(needs)
        report.held_elsewhere = [c.describe() for c in stages.elsewhere]
        report.stage = "batch"
        items = stages.batch(needs, hold=True)
        claimed, report.claimed = not store.read_only, len(items)
        report.stage = "preflight"
        checked = stages.preflight(items)
        report.preflight_dropped = dict(checked.dropped)
        report.stage = "generate"
        fatal = generate(stages, checked.items, report)
        if isinstance(fatal, LedgerUnwritableError):  # the store takes nothing now: no views, no audit
            raise fatal
        if claimed:
            stages.release()
            claimed = False
        finish(stages, report)
        if fatal is not None:
            report.stage = "generate"
            raise fatal
        if publishing is not None:
            report.stage = "publish"
            since = replay.since_hours if replay is not None else None
            report.notes += publish_stage(store, settings, publishing, stages.run_id, since)
    except PipelineError as exc:
        report.fail(exc)
    finally:
        _let_go(stages, lease, claimed)
        report.duration_s = time.perf_counter() - started
        report.crashed = stages.crashed()
        report.requests = store.request_counts()
        publish(stages, report)
    audit = {None: "not run", True: "green", False: "FAILED"}[report.audit_ok]
    stats = report.stats
    stages.log(
        f"run {report.run_id}: {stats.successes} success(es), {stats.rejects} reject(s), "
        f"${report.spend_usd:.4f} of {usd(report.budget_usd)}, audit {audit}"
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


def _let_go(stages: Stages, lease: Lease | None, claimed: bool) -> None:
    """Release the run's claims and lease; a store that takes nothing now (a full disk) is logged, not
    raised: the claims and the lease expire on their own, and the run's own failure stays the one named."""
    releases: list[tuple[str, Callable[[], object]]] = [("claims", stages.release)] if claimed else []
    if lease is not None:
        releases.append(("lease", lease.release))
    for what, release in releases:
        try:
            release()
        except StoreError as exc:
            stages.log(f"the run's {what} could not be released (they expire on their own): {exc}", logging.WARNING)


def publish(stages: Stages, report: RunReport) -> None:
    """The report in the store (unless read-only or the store takes nothing now) and through the reporter,
    with the run's rejects."""
    store, markdown = stages.store, report.markdown()
    if store.read_only:
        stages.log(f"EVIDENCE_ONLY run report (not stored):\n{markdown}")
    else:
        summary = json.dumps(report.summary(stamp(datetime.now(UTC))), sort_keys=True).encode()
        try:
            store.put(layout.run_key(report.run_id, layout.REPORT), markdown.encode())
            store.put(layout.LAST_GO_LIVE, summary)
        except StoreError as exc:
            stages.log(f"the run report could not be stored: {exc}", logging.WARNING)
    try:
        rejects = run_rejects(store, report.run_id)
    except StoreError as exc:
        stages.log(f"the run's rejects could not be read: {exc}", logging.WARNING)
        rejects = []
    stages.reporter.publish(report, rejects)
