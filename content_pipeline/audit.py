"""The audit: every invariant of DESIGN.md checked against the store, one line per violation."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from content_pipeline.errors import StoreError
from content_pipeline.ledger import scan_ledger
from content_pipeline.store import Store
from content_pipeline.views import (
    ViewDigestError,
    checkpoint_queued,
    master_frames,
    nano_sum,
    parse_checkpoint,
    read_master,
    read_usage,
    read_view,
    views_lock,
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


def audit(store: Store) -> AuditResult:
    """Check invariants 1-6 under the views lease (so no consolidation is half-seen); reads only.
    Master is checked against the ledger snapshot it was built from: records appended since (by a run
    still generating) are reported as a note, not as lost."""
    with views_lock(store):
        return _audit(store)


def _slugs(frame: pl.DataFrame) -> list[str]:
    return frame["slug"].unique().sort().to_list()


def _absent(frame: pl.DataFrame, other: pl.DataFrame, on: str) -> pl.DataFrame:
    """Rows of `frame` whose `on` value is not in `other`."""
    return frame.join(other.select(on).unique(), on=on, how="anti")


def _audit(store: Store) -> AuditResult:
    result = AuditResult()
    scan = scan_ledger(store, snapshot=views_snapshot(store))
    ledger = scan.within()
    if ledger.height < scan.frame.height:
        result.notes.append(
            f"{scan.frame.height - ledger.height} ledger record(s) appended since the last consolidation"
        )
    try:
        succ = read_master(store, "successes", verify=True)
        rej = read_master(store, "rejects", verify=True)
    except ViewDigestError as exc:
        result.violations.append(f"invariant 3: {exc}")
        return result
    except StoreError as exc:
        result.violations.append(f"invariant 1: {exc}")
        return result

    # 1. no success carries an error; every reject carries a non-empty error
    for name, frame in (("ledger", scan.frame), ("master", pl.concat([succ, rej.select(succ.columns)]))):
        bad = frame.filter((pl.col("status") == "success") & ~_no_error())
        if bad.height:
            result.add(1, f"{bad.height} {name} success(es) carry an error", bad["slug"].to_list())
        bad = frame.filter((pl.col("status") == "reject") & _no_error())
        if bad.height:
            result.add(1, f"{bad.height} {name} reject(s) have no error", bad["slug"].to_list())
    for name, status, frame in (("successes", "success", succ), ("rejects", "reject", rej)):
        wrong = frame.filter(pl.col("status") != status)
        if wrong.height:
            result.add(1, f"master {name} hold a non-{status} record", wrong["slug"].to_list())

    # 2. a slug at most once in each master file, and in at most one of them
    for name, frame in (("successes", succ), ("rejects", rej)):
        dupes = _slugs(frame.filter(pl.col("slug").is_duplicated()))
        if dupes:
            result.add(2, f"slug(s) more than once in master {name}", dupes)
    both = _slugs(succ.join(rej.select("slug").unique(), on="slug", how="semi"))
    if both:
        result.add(2, "slug(s) in both master successes and rejects", both)

    # 3. nothing lost: master is exactly what the ledger derives; nothing in master absent from the ledger
    want_succ, want_rej = master_frames(ledger)
    lost = _slugs(_absent(want_succ, succ, "slug"))
    if lost:
        result.add(3, f"{len(lost)} ledger success(es) missing from master (run consolidate)", lost)
    stale = _slugs(_absent(want_succ, succ, "id").join(succ.select("slug").unique(), on="slug", how="semi"))
    if stale:
        result.add(3, "master holds an older version than the ledger's latest success", stale)
    for name, frame in (("successes", succ), ("rejects", rej)):
        orphans = _absent(frame, ledger, "id")["slug"].to_list()
        if orphans:
            result.add(3, f"master {name} hold record(s) absent from the ledger", orphans)
    missing_rej = _slugs(_absent(want_rej, rej, "slug"))
    if missing_rej:
        result.add(3, f"{len(missing_rej)} ledger reject(s) missing from master (run consolidate)", missing_rej)

    # 4. checkpoint equals master; nothing both queued and done
    raw = read_view(store, "checkpoint")
    queued = checkpoint_queued(raw, succ, rej) if raw else None
    if queued is not None:  # done and rejected are master's, byte for byte
        decided = pl.concat([succ["slug"], rej["slug"]])
        clash = sorted(decided.filter(decided.is_in(list(queued))).to_list()) if queued else []
    else:  # compare entry by entry, to name the slugs that differ
        ck = parse_checkpoint(raw)
        done, rejected, queued = set(ck.get("done", {})), set(ck.get("rejected", {})), ck.get("queued", {})
        for label, have, frame in (("done", done, succ), ("rejected", rejected, rej)):
            master = set(frame["slug"].to_list())
            if have != master:
                what = "successes" if label == "done" else "rejects"
                result.add(4, f"checkpoint {label!r} differs from master {what}", sorted(have ^ master))
        clash = sorted(set(queued) & (done | rejected))
    if clash:
        result.add(4, "slug(s) both queued and decided in the checkpoint", clash)

    # 5. recorded spend equals the ledger's sum; no run over its budget
    usage = read_usage(store)
    total = nano_sum(ledger)
    if int(usage.get("cost_nano", 0)) != total:
        result.add(5, f"recorded spend {usage.get('cost_nano', 0) / 1e9:.6f} USD != ledger sum {total / 1e9:.6f} USD")
    per_run = scan.frame.group_by("run_id").agg(
        cost=(pl.col("cost_usd") * 1e9).round().cast(pl.Int64).sum(), budget=pl.col("run_budget_usd").max()
    )
    over = per_run.filter(pl.col("cost") > (pl.col("budget") * 1e9).round())
    for row in over.sort("run_id").iter_rows(named=True):
        result.add(5, f"run {row['run_id']} spent {row['cost'] / 1e9:.6f} USD over its budget {row['budget']:.2f} USD")

    # 6. every ledger line parses; torn tails are repaired by consolidate and reported
    for line in scan.bad_lines:
        result.violations.append(f"invariant 6: {line}")
    result.notes.extend(scan.torn_tails)
    return result
