"""Health: one screen of checks of the store, the ledger, leases, claims, views, the audit, the last run,
today's spend, the failure rate, publishing (its SLO, a halt), the queue (the posting plan's next 24 hours)
and engagement (a drop), each green, amber or red with one line."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal

import polars as pl

from content_pipeline.batches.held import held_batches
from content_pipeline.claims.pending import outstanding
from content_pipeline.claims.sweep import Swept, sweep
from content_pipeline.configs import HealthConfig, PlanConfig, RecoveryConfig
from content_pipeline.engagement.check import drop_check
from content_pipeline.errors import PipelineError
from content_pipeline.ledger.quarantine import damaged_records
from content_pipeline.ledger.scan import stream_ledger, torn_by_gone_writers
from content_pipeline.money import to_usd, usd
from content_pipeline.ops.kpis import last_outcomes
from content_pipeline.ops.outcomes import PROVIDER, outcomes
from content_pipeline.publish.halt import halted
from content_pipeline.publish.history import History, read_history
from content_pipeline.publish.slo import publish_slo
from content_pipeline.store import Store, layout
from content_pipeline.store.lease import iso_at, live_lease
from content_pipeline.views.audit import audit
from content_pipeline.views.daily import spent_today
from content_pipeline.views.snapshot import load_manifest, views_cut, why_not_current

Level = Literal["green", "amber", "red"]
_RANK: dict[Level, int] = {"green": 0, "amber": 1, "red": 2}
FAILURE_AMBER, FAILURE_RED = 0.10, 0.20  # the runbooks' thresholds for the last 24 hours' failure rate
SPEND_AMBER = 0.8  # today's spend above this share of DAILY_BUDGET_USD is amber
LAST_RUN_AMBER_H = 24.0  # a last go-live older than this is amber: the schedule may have stopped
BATCH_WINDOW_S = 24 * 3600.0  # the Batch API's completion window: an outstanding batch older is amber
BATCH_UNSENT_AMBER_S = 600.0  # a batch planned and not submitted for longer is amber


@dataclass(frozen=True)
class Check:
    """One check: its name, its level and one line of detail."""

    name: str
    level: Level
    detail: str

    def line(self) -> str:
        return f"{self.level.upper():<5}  {self.name:<12}  {self.detail}"


@dataclass
class Health:
    """Every check, in order; the worst level is the health's."""

    checks: list[Check] = field(default_factory=list)

    @property
    def level(self) -> Level:
        return max((c.level for c in self.checks), key=_RANK.__getitem__, default="green")

    @property
    def exit_code(self) -> int:
        """0 green, 1 amber, 2 red."""
        return _RANK[self.level]

    def lines(self) -> list[str]:
        return [c.line() for c in self.checks] + [f"health: {self.level}"]

    def to_dict(self) -> dict[str, object]:
        checks = [{"name": c.name, "level": c.level, "detail": c.detail} for c in self.checks]
        return {"level": self.level, "checks": checks}

    def markdown(self) -> str:
        rows = [f"| {c.level} | {c.name} | {c.detail.replace('|', '/')} |" for c in self.checks]
        return "\n".join([f"# Health: {self.level}", "", "| level | check | detail |", "|---|---|---|", *rows])

    def faults(self) -> list[str]:
        """`name: detail` of every check that is not green (a failed health flow run's message)."""
        return [f"{c.name}: {c.detail}" for c in self.checks if c.level != "green"]


Probe = Callable[[], Check]


def _store(store: Store) -> Check:
    if store.read_only:
        store.list(layout.STATE_PREFIX)
        return Check("store", "amber", f"{store.url} readable; not checked for writes (EVIDENCE_ONLY)")
    key = f"{layout.HEALTH_PREFIX}probe-{secrets.token_hex(6)}"
    body = secrets.token_bytes(32)
    store.put(key, body)
    try:
        if store.get(key) != body:
            return Check("store", "red", f"{store.url}: a probe object did not read back as written")
    finally:
        store.delete(key)
    return Check("store", "green", f"{store.url} reachable and writable")


def _ledger(store: Store) -> Check:
    count = 0

    def add(frame: pl.DataFrame) -> None:
        nonlocal count
        count += frame.height

    scan = stream_ledger(store, add)
    torn = torn_by_gone_writers(scan)
    where = f"{count} record(s) in {len(scan.segments)} segment(s)"
    if torn:
        return Check("ledger", "red", f"{where}; {len(torn)} torn tail(s) of gone writers: {torn[0]} (restore repairs)")
    damaged = damaged_records(store, scan)
    pending = [d for d in damaged if not d.accepted]
    if pending or scan.incomplete:
        lines = [d.line() for d in pending] + scan.incomplete
        return Check("ledger", "red", f"{where}; {len(lines)} damaged record(s): {lines[0]}")
    live = f"; {len(scan.torn_tails)} tail(s) being written" if scan.torn_tails else ""
    settled = f"; {len(damaged)} damaged record(s) settled" if damaged else ""
    return Check("ledger", "green", f"{where} readable{settled}{live}")


def _leases(store: Store, swept: Swept) -> Check:
    stale = swept.leases
    held = live_lease(store, layout.BATCH_LOCK)
    builder = f"batch builder held by {held[0].describe()} until {iso_at(held[1])}" if held else "batch builder free"
    if stale:
        return Check("leases", "red", f"{len(stale)} stale: {stale[0].replace(' would be released', '')}; {builder}")
    return Check("leases", "green", builder)


def _claims(swept: Swept) -> Check:
    if not swept.claimed:
        return Check("claims", "green", "no stale claims")
    slugs = sum(n for n, _ in swept.claimed)
    oldest = min(at for _, at in swept.claimed)
    first = swept.claims[0].replace(" would be released", "")
    return Check(
        "claims", "red", f"{slugs} stale claim(s) of {len(swept.claimed)} gone run(s), oldest {iso_at(oldest)}: {first}"
    )


def _views(store: Store) -> Check:
    manifest, _, damaged = load_manifest(store)
    if manifest is None and (damaged or store.list(layout.VIEW_OBJECTS)):
        lost = "is damaged" if damaged else f"is gone: no manifest names the objects in {layout.VIEW_OBJECTS}"
        return Check("views", "red", f"the views' manifest {lost} (restore rebuilds it)")
    cut = views_cut(store)
    if cut:
        return Check("views", "red", f"{len(cut)} damaged: {cut[0]}")
    why = why_not_current(store)
    if why is not None:
        return Check("views", "amber", f"not current: {why} (consolidate pending)")
    return Check("views", "green", "current")


def _audit(store: Store) -> Check:
    result = audit(store)
    if not result.ok:
        return Check("audit", "red", f"{len(result.violations)} violation(s); first: {result.violations[0]}")
    return Check("audit", "green", "all invariants hold" + (f" ({len(result.notes)} note(s))" if result.notes else ""))


def _last_run(store: Store, now: datetime) -> Check:
    raw = store.get(layout.LAST_GO_LIVE)
    if raw is None:
        return Check("last run", "amber", "no go-live run has ended on this store yet")
    try:
        last = json.loads(raw)
        finished = datetime.fromisoformat(str(last["finished_at"]))
        spend, budget = float(last["spend_usd"]), float(last["budget_usd"])
    except (ValueError, KeyError, TypeError):
        return Check("last run", "red", f"{layout.LAST_GO_LIVE} is not a run summary (damaged)")
    age_h = (now - finished).total_seconds() / 3600
    what = f"run {last.get('run_id')} ended {age_h:.1f} h ago, spent {usd(spend)} of {usd(budget)}"
    if not last.get("ok"):
        return Check("last run", "red", f"{what}: FAILED in {last.get('failure')}")
    if age_h > LAST_RUN_AMBER_H:
        return Check("last run", "amber", f"{what}: no run for over {LAST_RUN_AMBER_H:g} h")
    return Check("last run", "green", f"{what}: completed, audit green")


def _spend(store: Store, settings: RecoveryConfig, now: datetime) -> Check:
    today = to_usd(spent_today(store, now))
    ceiling = settings.daily_budget_usd
    what = f"today (UTC) {usd(today)} of DAILY_BUDGET_USD {usd(ceiling)} ({today / ceiling:.0%})"
    level: Level = "red" if today >= ceiling else "amber" if today > SPEND_AMBER * ceiling else "green"
    return Check("spend", level, what)


def failure_rate(frame: pl.DataFrame) -> tuple[int, int]:
    """(items whose last attempt in `frame` failed for a provider or transient cause, items attempted)."""
    if frame.is_empty():
        return 0, 0
    last = last_outcomes(frame)
    return int(last["cause"].is_in(PROVIDER).sum()), last.height


def _failures(store: Store, now: datetime) -> Check:
    failed, attempted = failure_rate(outcomes(store, since=now - timedelta(hours=24)).frame)
    if not attempted:
        return Check("failures", "green", "no items attempted in the last 24 h")
    rate = failed / attempted
    level: Level = "red" if rate > FAILURE_RED else "amber" if rate > FAILURE_AMBER else "green"
    limits = f"amber above {FAILURE_AMBER:.0%}, red above {FAILURE_RED:.0%}"
    return Check("failures", level, f"{rate:.1%} in the last 24 h ({failed} of {attempted} item(s); {limits})")


def _batches(store: Store, now: datetime) -> Check:
    """Batch API batches not collected yet: amber once one is older than the 24 h completion window (collect
    is not running, or cannot reach the provider), or planned and not submitted for over 10 minutes; amber
    while one is held because its answers could not be read (named, with what stays booked)."""
    rows = outstanding(store, now)
    if not rows:
        return Check("batches", "green", "no outstanding batch")
    held = held_batches(store)
    oldest = rows[0]
    unsent = [r for r in rows if r["batch_id"] is None and r["age_s"] > BATCH_UNSENT_AMBER_S]
    what = (
        f"{len(rows)} outstanding ({sum(r['requests'] for r in rows)} request(s)); oldest "
        f"{oldest['run_id']}/{oldest['name']}, {oldest['age_s'] / 3600:.1f} h old"
    )
    amber: list[str] = []
    if held:
        more = f" (and {len(held) - 1} more)" if len(held) > 1 else ""
        amber.append(f"{len(held)} held as unknown: {held[0].line()}{more}")
    if oldest["age_s"] > BATCH_WINDOW_S or unsent:
        why = "past the 24 h window: is `collect` running?" if oldest["age_s"] > BATCH_WINDOW_S else ""
        amber.append(f"{what}; {why or f'{len(unsent)} planned but not submitted (collect submits them)'}")
    return Check("batches", "amber", "; ".join(amber)) if amber else Check("batches", "green", what)


def _publishing(store: Store, history: History, now: datetime) -> Check:
    slo, stopped = publish_slo(history, now), halted(store)
    faults = [f"halted: {stopped}"] if stopped else []
    faults += (
        [f"{len(history.damaged)} damaged attempt-log line(s), first {history.damaged[0]}"] if history.damaged else []
    )
    level: Level = "green" if slo.met and not faults else "amber"
    return Check("publishing", level, "; ".join([slo.line(), *faults]))


def _queue(history: History, settings: PlanConfig, now: datetime) -> Check:
    """The runbook's daily check 2: the next 24 hours' slots of the posting plan each hold an approved post
    (scheduled live on the target); amber when some do not, red when none does."""
    plan = settings.posting_plan()
    if plan is None:
        return Check("queue", "green", "no posting plan (PUBLISH_PLAN): posts go out as each publish run sends them")
    slots, taken = plan.ahead(now), history.scheduled(settings.publish_target)
    empty = [slot for slot in slots if slot.isoformat() not in taken]
    what = f"{len(slots) - len(empty)} of the next 24 h's {len(slots)} slot(s) ({plan.shown()}) hold an approved post"
    if not empty:
        return Check("queue", "green", what)
    level: Level = "red" if len(empty) == len(slots) else "amber"
    return Check("queue", level, f"{what}; next empty slot {empty[0]:%Y-%m-%d %H:%M} UTC (a publish run fills it)")


def _engagement(store: Store, settings: HealthConfig) -> Check:
    found = drop_check(store, settings)
    return Check("engagement", found.level, found.line())


def health(
    store: Store, settings: HealthConfig, *, now: datetime | None = None, probes: Iterable[Probe] = ()
) -> Health:
    """Run every check; a check that cannot run (the store down, an object unreadable) is red with why.
    `probes` are further checks (the flow layer's: the Prefect server and its workers)."""
    moment = now or datetime.now(UTC)
    unix = moment.timestamp() if now else time.time()

    @cache  # what a sweep would release: read once, for the leases and the claims
    def swept() -> Swept:
        return sweep(store, settings.sweep_grace_s, unix, dry_run=True)

    @cache  # the attempt log: read once, for publishing and the queue
    def history() -> History:
        return read_history(store, keep_damaged=False)

    checks: list[tuple[str, Probe]] = [
        ("store", lambda: _store(store)),
        ("ledger", lambda: _ledger(store)),
        ("leases", lambda: _leases(store, swept())),
        ("claims", lambda: _claims(swept())),
        ("views", lambda: _views(store)),
        ("audit", lambda: _audit(store)),
        ("last run", lambda: _last_run(store, moment)),
        ("spend", lambda: _spend(store, settings, moment)),
        ("failures", lambda: _failures(store, moment)),
        ("publishing", lambda: _publishing(store, history(), moment)),
        ("queue", lambda: _queue(history(), settings, moment)),
        ("batches", lambda: _batches(store, moment)),
        ("engagement", lambda: _engagement(store, settings)),
    ]
    result = Health()
    for name, probe in [*checks, *(("probe", p) for p in probes)]:
        try:
            result.checks.append(probe())
        except (PipelineError, OSError) as exc:
            result.checks.append(Check(name, "red", f"could not check: {exc}"))
        if name == "store" and result.checks[-1].level == "red":
            break  # nothing else can be read from a store that does not answer
    return result
