"""Each stage of a run on one store: the core call, through the reporter, with the lines it logs."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import partial

from content_pipeline.claims import queue
from content_pipeline.claims.batch import build_batch
from content_pipeline.claims.queue import RunClaims
from content_pipeline.claims.sweep import Swept, sweep
from content_pipeline.errors import StoreError
from content_pipeline.generation.budget import batch_worst_nano
from content_pipeline.generation.changed import Known, changed_slugs
from content_pipeline.generation.templates import active_templates
from content_pipeline.intake.catalogue import Item
from content_pipeline.intake.inventory import Inventory, take_inventory
from content_pipeline.intake.items import write_items
from content_pipeline.intake.preflight import Preflight, preflight
from content_pipeline.ledger.inflight import Booked, booked_at_crash
from content_pipeline.ledger.recover import import_rescued, rescue_files
from content_pipeline.run.reporter import Reporter
from content_pipeline.settings import Settings
from content_pipeline.store import Store, layout
from content_pipeline.store.host import this_host
from content_pipeline.store.lease import Lease
from content_pipeline.views.audit import AuditResult, audit
from content_pipeline.views.consolidate import Consolidation, consolidate, sync_checkpoint
from content_pipeline.views.snapshot import read_usage


@dataclass
class Stages:
    """The stages of one run (`settings.run_id`) over one store; each runs through the reporter (a Prefect
    task in a flow run) and logs what it did."""

    settings: Settings
    store: Store
    reporter: Reporter
    retry: frozenset[str] = field(default_factory=frozenset)  # rejects a replay generates again
    known_changed: frozenset[str] | None = None  # what this run's inventory found changed (read once)
    known: Known | None = None  # what items are compared with to tell whether they changed
    lease: Lease | None = None  # the run's lease while it is held: checked right before each batch is created
    elsewhere: list[RunClaims] = field(default_factory=list)  # live claims of other runs, seen at inventory

    @property
    def run_id(self) -> str:
        assert self.settings.run_id is not None
        return self.settings.run_id

    def log(self, message: str, level: int = logging.INFO) -> None:
        self.reporter.log(level, message)

    def recover(self) -> list[str]:
        """Import the rescue files an earlier run left (its store would not take its outcomes) into the
        ledger, before anything else reads it; the lines to note in the report (a stage only when there
        is a file to import)."""
        if not rescue_files(self.store, self.settings.rescue_dir):
            return []
        return self.reporter.stage("recover", self._recover)

    def _recover(self) -> list[str]:
        found = import_rescued(self.store, self.settings.rescue_dir, f"{this_host()}-{os.getpid()}-rescued")
        line = f"imported {found.records} record(s) from the rescue file(s) {', '.join(found.files)}"
        self.log(line, logging.WARNING)
        for damaged in found.damaged:
            self.log(damaged, logging.ERROR)
        return [line, *found.damaged]

    def crashed(self) -> Booked | None:
        """The calls in flight at a crash that the views book at their worst case (None when the views
        cannot be read now)."""
        try:
            return booked_at_crash(self.store, read_usage(self.store))
        except StoreError:
            return None

    def inventory(self, want: int | None = None) -> Inventory:
        """What needs content. With `want` (go-live: LIMIT), the catalogue is read until that many items
        another run has not claimed are found, and the run's report names each invalid row (the log counts
        them); without, every row is read, each invalid one logged, and the needs-content list written to
        the store (the inventory command)."""
        return self.reporter.stage("inventory", lambda: self._inventory(want))

    def _inventory(self, want: int | None) -> Inventory:
        settings = self.settings
        self.known_changed = None
        self.elsewhere = [] if want is None else queue.held_elsewhere(self.store, self.run_id)
        taken = [slug for claims in self.elsewhere for slug in claims.slugs]
        inv = take_inventory(
            self.store,
            settings.catalogue,
            settings.scope,
            self.run_id,
            settings.s3_options(),
            self.changed,
            want,
            taken,
            keep=want is not None,
        )
        for line in inv.repaired:
            self.log(line, logging.WARNING)
        tally = inv.catalogue
        for row in tally.invalid if want is None else ():
            self.log(f"invalid catalogue row skipped: {row.line(settings.catalogue)}", logging.WARNING)
        read = f"{tally.rows} rows" if tally.complete else f"{tally.rows} rows read (stopped at {want} needing content)"
        invalid = f"{len(tally.invalid)} invalid" + (" (the report names them)" if tally.invalid and want else "")
        self.log(
            f"catalogue: {read}, {tally.valid} valid, {invalid}; needs content: {inv.needing} "
            f"(scope {settings.scope}), {len(inv.changed)} of the done item(s) changed since their success"
            + held_line(self.elsewhere),
            logging.WARNING if tally.invalid else logging.INFO,
        )
        self.known_changed = inv.changed  # every item this run may claim was among the rows read
        return inv

    def changed(self, items: list[Item]) -> frozenset[str]:
        """The done items among `items` whose template, MODEL or fields changed since their success: generated
        again (REGENERATE_CHANGED, or scope changed)."""
        if not self.settings.regenerates_changed:
            return frozenset()
        if self.known_changed is not None:  # go-live: its inventory looked at every item it may claim
            return frozenset(item.slug for item in items if item.slug in self.known_changed)
        self.known = self.known or Known.read(self.store)  # read once, for every chunk of the catalogue
        return frozenset(changed_slugs(self.store, self.settings, items, self.known))

    def batch(self, needs: list[Item], hold: bool) -> list[Item]:
        """Claim up to LIMIT items and write the run's batch file. `hold` (go-live) ties the claims to this
        process rather than to the TTL alone, and waits up to LEASE_WAIT_S for another run's builder; the
        batch command fails at once."""
        return self.reporter.stage("batch", lambda: self._batch(needs, hold))

    def _batch(self, needs: list[Item], hold: bool) -> list[Item]:
        settings = self.settings
        items, freed, took_over = build_batch(
            self.store,
            self.run_id,
            needs,
            settings.limit,
            pid=os.getpid() if hold else None,
            lease_ttl_s=settings.lease_ttl_s,
            claim_ttl_s=settings.claim_ttl_s,
            wait_s=settings.lease_wait_s if hold else 0.0,
        )
        if not self.store.read_only:
            write_items(self.store, layout.run_key(self.run_id, layout.BATCH), items)
        if took_over:
            self.log(f"took over the batch-builder lease left by {took_over}", logging.WARNING)
        for run in freed:
            self.log(f"freed the claims of run {run}, which is gone", logging.WARNING)
        self.log(f"batch: claimed {len(items)} item(s) for run {self.run_id}")
        return items

    def sweep(self) -> Swept:
        """Release the leases and queued claims of runs that are gone (claims/sweep.py); each one is named,
        and so are the claims the batch command keeps for a generate stage."""
        return self.reporter.stage("sweep", self._sweep)

    def _sweep(self) -> Swept:
        swept = sweep(self.store, self.settings.sweep_grace_s)
        for line in swept.lines:
            self.log(f"sweep: {line}", logging.WARNING)
        for line in swept.kept:
            self.log(f"sweep: kept: {line}")
        return swept

    def preflight(self, planned: list[Item] | None = None) -> Preflight:
        """Filter the run's batch file (or, read-only, the `planned` batch) and guard the budget; the
        rejects a replay generates again are kept."""
        return self.reporter.stage("preflight", lambda: self._preflight(planned))

    def _preflight(self, planned: list[Item] | None) -> Preflight:
        settings, templates = self.settings, active_templates(self.store)
        worst = partial(batch_worst_nano, settings, templates)
        result = preflight(self.store, settings, self.run_id, worst, planned, self.retry, self.changed)
        for warning in result.warnings:
            self.log(warning, logging.WARNING)
        self.log(f"preflight: {len(result.items)} item(s) ready")
        return result

    def adopt(self) -> int:
        """Tie the run's claims to this process and its run lease, so a killed generate frees them within a
        lease lifetime."""
        pid = os.getpid()
        return self.reporter.stage("adopt-claims", lambda: len(queue.adopt(self.store, self.run_id, pid)))

    def release(self) -> None:
        """Drop the run's claims: what it did not finish becomes claimable again."""
        self.reporter.stage("release-claims", lambda: queue.release(self.store, self.run_id))

    def consolidate(self, verify: bool = False) -> Consolidation | None:
        """Rebuild the views; with `verify`, also rewrite views whose objects were changed by hand."""
        return self.reporter.stage("consolidate", lambda: self._consolidate(verify))

    def _consolidate(self, verify: bool) -> Consolidation | None:
        result = consolidate(self.store, verify=verify)
        if result is not None:
            for line in result.repaired:
                self.log(f"ledger repaired: {line}", logging.WARNING)
            self.log(
                f"consolidate: {result.records} ledger records -> {result.successes} successes, "
                f"{result.rejects} rejects; changed: {', '.join(result.changed) or 'nothing'}"
            )
        return result

    def audit(self) -> AuditResult:
        return self.reporter.stage("audit", self._audit)

    def _audit(self) -> AuditResult:
        result = audit(self.store)
        for violation in result.violations:
            self.log(violation, logging.ERROR)
        for note in result.notes:
            self.log(note, logging.WARNING)
        self.log(f"audit: {'all invariants hold' if result.ok else f'{len(result.violations)} violation(s)'}")
        return result

    def sync(self) -> bool:
        """Rewrite the checkpoint from master; True when it changed."""
        return self.reporter.stage("sync", self._sync)

    def _sync(self) -> bool:
        changed = sync_checkpoint(self.store)
        self.log(f"sync: checkpoint {'rewritten from master' if changed else 'already matches master'}")
        return changed


def held_line(elsewhere: list[RunClaims]) -> str:
    """What other live runs hold, for the inventory line: how many items and by whom until when."""
    if not elsewhere:
        return ""
    return f"; {sum(len(c.slugs) for c in elsewhere)} item(s) held by other runs: " + ", ".join(
        c.describe() for c in elsewhere
    )
