"""The audit: every invariant of DESIGN.md checked against the store, one line per violation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from content_pipeline.errors import StoreError
from content_pipeline.ledger.inflight import read_intents
from content_pipeline.ledger.quarantine import Damaged, damaged_intents, damaged_records, held_slugs
from content_pipeline.ledger.scan import LedgerScan
from content_pipeline.ledger.spill import compact
from content_pipeline.money import nano_expr, to_usd
from content_pipeline.store import Store
from content_pipeline.views.booked import book_damaged
from content_pipeline.views.checkpoint import checkpoint_queued, parse_checkpoint
from content_pipeline.views.consolidate import views_lock
from content_pipeline.views.master import UsageSums, master_frames, nano_sum, once_per_id
from content_pipeline.views.passes import LedgerPass, ledger_partitions
from content_pipeline.views.snapshot import (
    REPUBLISH,
    ViewDamagedError,
    ViewDigestError,
    damaged_views,
    read_master,
    read_usage,
    read_view,
    views_snapshot,
)

_SHOW = 5


@dataclass
class AuditResult:
    """Violations (the audit fails when there is any) and notes (reported, not failures)."""

    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, invariant: int, what: str, slugs: list[str] | None = None) -> None:
        shown = ""
        if slugs:
            shown = ": " + ", ".join(slugs[:_SHOW]) + (f" and {len(slugs) - _SHOW} more" if len(slugs) > _SHOW else "")
        self.violations.append(f"invariant {invariant}: {what}{shown}")


def _no_error() -> pl.Expr:
    return pl.col("error").is_null() | (pl.col("error").str.strip_chars() == "")


def _broken() -> list[tuple[str, pl.Expr, str]]:
    """Invariant 1 by status: (status, the rows of that status that break it, what the violation says)."""
    return [
        ("success", (pl.col("status") == "success") & ~_no_error(), "success(es) carry an error"),
        ("reject", (pl.col("status") == "reject") & _no_error(), "reject(s) have no error"),
    ]


def _slugs(frame: pl.DataFrame) -> list[str]:
    return frame["slug"].unique().sort().to_list()


def _absent(frame: pl.DataFrame, other: pl.DataFrame, on: str) -> pl.DataFrame:
    """Rows of `frame` whose `on` value is not in `other`."""
    return frame.join(other.select(on).unique(), on=on, how="anti")


@dataclass
class _Derivation:
    """Master against what the ledger derives, added up one slug partition at a time."""

    records: int = 0
    within: int = 0
    cost_nano: int = 0
    offenders: dict[str, list[pl.DataFrame]] = field(default_factory=lambda: {"success": [], "reject": []})
    lost: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    orphans_succ: list[str] = field(default_factory=list)
    orphans_rej: list[str] = field(default_factory=list)
    missing_rej: list[str] = field(default_factory=list)
    repeated_ids: list[str] = field(default_factory=list)  # slugs of other records under one id
    extras: list[pl.DataFrame] = field(default_factory=list)  # records written again under an id: not counted
    copies: list[pl.DataFrame] = field(default_factory=list)  # of those, the same outcome written twice

    def add(self, whole: pl.DataFrame, ledger: pl.DataFrame, succ: pl.DataFrame, rej: pl.DataFrame) -> None:
        """One partition: its ledger rows (`whole`, and `ledger`: those inside the snapshot), master's rows.
        A record written twice (same id, slug and status) counts once; another record under an id is named."""
        part, extra = once_per_id(whole)  # a slug's records share a partition
        ledger = once_per_id(ledger)[0]
        self.records += part.height
        self.within += ledger.height
        if extra.height:
            same = extra.join(part.select("id", "slug", "status"), on=["id", "slug", "status"], how="semi")
            self.extras.append(compact(extra))
            self.copies.append(compact(same.select("id", "slug", "seg", "line")))
            self.repeated_ids += _slugs(extra.join(same, on=["id", "seg", "line"], how="anti"))
        self.cost_nano += nano_sum(ledger)
        for status, broken, _ in _broken():
            bad = part.filter(broken)
            if bad.height:
                self.offenders[status].append(compact(bad.select("seg", "line", "slug")))
        want_succ, want_rej = master_frames(ledger)
        self.lost += _slugs(_absent(want_succ, succ, "slug"))
        self.stale += _slugs(_absent(want_succ, succ, "id").join(succ.select("slug").unique(), on="slug", how="semi"))
        self.orphans_succ += _absent(succ, ledger, "id")["slug"].to_list()
        self.orphans_rej += _absent(rej, ledger, "id")["slug"].to_list()
        self.missing_rej += _slugs(_absent(want_rej, rej, "slug"))

    def offending(self, status: str) -> list[str]:
        """Slugs of the ledger records of `status` that break invariant 1, in ledger order."""
        frames = self.offenders[status]
        return pl.concat(frames).sort("seg", "line")["slug"].to_list() if frames else []


def audit(store: Store) -> AuditResult:
    """Check invariants 1-6 under the views lease (so no consolidation is half-seen); reads only.
    Master is checked against the ledger snapshot it was built from: records appended since (by a run
    still generating) are reported as a note, not as lost."""
    with views_lock(store):
        return _audit(store)


# the invariant a damaged view object breaks (master's own are checked as they are read)
_VIEW_INVARIANT = {"processed": 3, "rejected": 3, "checkpoint": 4, "usage": 5, "superseded": 4}


def _audit(store: Store) -> AuditResult:
    result = AuditResult()
    try:
        snapshot = views_snapshot(store)
        damaged = damaged_views(store, _VIEW_INVARIANT)
    except ViewDamagedError as exc:  # the manifest itself
        result.violations.append(f"invariant 3: {exc}")
        return result
    for name, line in damaged.items():
        result.violations.append(f"invariant {_VIEW_INVARIANT[name]}: {line}")
    with ledger_partitions(store, snapshot=snapshot) as passed:
        try:
            succ = read_master(store, "successes", verify=True)
            rej = read_master(store, "rejects", verify=True)
        except ViewDigestError as exc:
            result.violations.append(f"invariant 3: {exc}")
            return result
        except StoreError as exc:
            result.violations.append(f"invariant 1: {exc}")
            return result
        found = _derive(passed, succ, rej)
    if found.within < found.records:
        result.notes.append(f"{found.records - found.within} ledger record(s) appended since the last consolidation")
    _errors(result, found, succ, rej)
    _unique_ids(result, found, passed.scan)
    _once(result, succ, rej)
    _nothing_lost(result, found)
    records = damaged_records(store, passed.scan)
    if "checkpoint" not in damaged:
        _checkpoint(result, read_view(store, "checkpoint"), succ, rej, held_slugs(store, records))
    usage = passed.usage.less(pl.concat(found.extras)) if found.extras else passed.usage
    booked = book_damaged(store, records, passed.usage.most_nano, write=False)  # kept on the books
    _spend(
        result,
        None if "usage" in damaged else read_usage(store),
        found.cost_nano + nano_sum(booked),
        usage.plus(booked),
    )
    _lines(result, passed.scan, records + damaged_intents(store, read_intents(store)))
    return result


def _derive(passed: LedgerPass, succ: pl.DataFrame, rej: pl.DataFrame) -> _Derivation:
    """Master against the ledger inside the snapshot master was built from, one slug partition at a time."""
    found = _Derivation()
    scan, parts = passed.scan, passed.parts
    succ_part, rej_part = parts.part_of(succ), parts.part_of(rej)
    for i, part in enumerate(parts):
        found.add(part, scan.within(part), succ.filter(succ_part == i), rej.filter(rej_part == i))
    return found


def _errors(result: AuditResult, found: _Derivation, succ: pl.DataFrame, rej: pl.DataFrame) -> None:
    """1. No success carries an error; every reject carries a non-empty error."""
    master = pl.concat([succ, rej.select(succ.columns)])
    for status, _, what in _broken():
        slugs = found.offending(status)
        if slugs:
            result.add(1, f"{len(slugs)} ledger {what}", slugs)
    for _, broken, what in _broken():
        bad = master.filter(broken)
        if bad.height:
            result.add(1, f"{bad.height} master {what}", bad["slug"].to_list())
    for name, status, frame in (("successes", "success", succ), ("rejects", "reject", rej)):
        wrong = frame.filter(pl.col("status") != status)
        if wrong.height:
            result.add(1, f"master {name} hold a non-{status} record", wrong["slug"].to_list())


def _unique_ids(result: AuditResult, found: _Derivation, scan: LedgerScan) -> None:
    """Every attempt ever made has an id of its own: two other ledger records under one id cannot be told
    apart by the checks that go by id (what master holds, what settled an intent). The same outcome written
    twice (a process that lost its lease, paused between its check and its append) is counted once and its
    extra copy named."""
    if found.repeated_ids:
        result.add(1, "ledger record id(s) held by more than one record", sorted(found.repeated_ids))
    if found.copies:
        for row in pl.concat(found.copies).sort("seg", "line").iter_rows(named=True):
            result.notes.append(
                f"record {row['id']} ({row['slug']}) is in the ledger twice: the copy at "
                f"{scan.segments[row['seg']][0]} line {row['line'] + 1} is not counted"
            )


def _once(result: AuditResult, succ: pl.DataFrame, rej: pl.DataFrame) -> None:
    """2. A slug at most once in each master file, and in at most one of them."""
    for name, frame in (("successes", succ), ("rejects", rej)):
        dupes = _slugs(frame.filter(pl.col("slug").is_duplicated()))
        if dupes:
            result.add(2, f"slug(s) more than once in master {name}", dupes)
    both = _slugs(succ.join(rej.select("slug").unique(), on="slug", how="semi"))
    if both:
        result.add(2, "slug(s) in both master successes and rejects", both)


def _nothing_lost(result: AuditResult, found: _Derivation) -> None:
    """3. Master is exactly what the ledger derives; nothing in master is absent from the ledger."""
    if found.lost:
        result.add(3, f"{len(found.lost)} ledger success(es) missing from master (run consolidate)", sorted(found.lost))
    if found.stale:
        result.add(3, "master holds an older version than the ledger's latest success", sorted(found.stale))
    for name, orphans in (("successes", found.orphans_succ), ("rejects", found.orphans_rej)):
        if orphans:
            result.add(3, f"master {name} hold record(s) absent from the ledger", sorted(orphans))
    if found.missing_rej:
        missing = sorted(found.missing_rej)
        result.add(3, f"{len(missing)} ledger reject(s) missing from master (run consolidate)", missing)


def _checkpoint(
    result: AuditResult, raw: bytes | None, succ: pl.DataFrame, rej: pl.DataFrame, held: dict[str, str]
) -> None:
    """4. The checkpoint equals master, and holds the slugs of damaged records; nothing is both queued and done."""
    queued = checkpoint_queued(raw, succ, rej, held) if raw else None
    if queued is not None:  # done and rejected are master's, byte for byte
        decided = pl.concat([succ["slug"], rej["slug"]])
        clash = sorted(decided.filter(decided.is_in(list(queued))).to_list()) if queued else []
    else:  # compare entry by entry, to name the slugs that differ
        try:
            ck = parse_checkpoint(raw)
        except ValueError as exc:
            result.add(4, f"the checkpoint view is damaged ({str(exc)[:120]}): {REPUBLISH}")
            return
        done, rejected, queued = set(ck.get("done", {})), set(ck.get("rejected", {})), ck.get("queued", {})
        for label, have, frame in (("done", done, succ), ("rejected", rejected, rej)):
            master = set(frame["slug"].to_list())
            if have != master:
                what = "successes" if label == "done" else "rejects"
                result.add(4, f"checkpoint {label!r} differs from master {what}", sorted(have ^ master))
        if set(ck.get("held", {})) != set(held):
            result.add(4, "checkpoint 'held' differs from the damaged records in quarantine", sorted(held))
        clash = sorted(set(queued) & (done | rejected))
    if clash:
        result.add(4, "slug(s) both queued and decided in the checkpoint", clash)


def _spend(result: AuditResult, recorded: dict[str, Any] | None, cost_nano: int, usage: UsageSums) -> None:
    """5. Recorded spend equals the ledger's sum, damaged records kept on the books included (unless the usage
    view is damaged, reported already); no run spent over its budget."""
    if recorded is not None and int(recorded.get("cost_nano", 0)) != cost_nano:
        result.add(
            5,
            f"recorded spend {to_usd(recorded.get('cost_nano', 0)):.6f} USD != ledger sum {to_usd(cost_nano):.6f} USD",
        )
    over = usage.by_run().filter(pl.col("cost_nano") > nano_expr("budget_usd"))
    for row in over.iter_rows(named=True):
        spent, budget = to_usd(row["cost_nano"]), row["budget_usd"]
        result.add(5, f"run {row['run_id']} spent {spent:.6f} USD over its budget {budget:.2f} USD")


def _lines(result: AuditResult, scan: LedgerScan, damaged: list[Damaged]) -> None:
    """6. Every ledger line parses and matches its checksum; a damaged one is kept in quarantine with its
    slug held until the operator accepts the loss (then a note); torn tails are repaired by consolidate
    and reported. The lines of the intents logs too: a damaged intent's call cannot be booked, so it is a
    violation until the operator accepts it."""
    for record in damaged:
        if record.accepted:
            result.notes.append(record.line())
        else:
            result.violations.append(f"invariant 6: {record.line()}")
    result.violations += [f"invariant 6: {line}" for line in scan.incomplete]
    result.notes.extend(scan.torn_tails)
