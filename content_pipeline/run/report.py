"""The run report: counts, spend against budget, tokens, rejects by reason, duration, where the outputs are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from content_pipeline.errors import PipelineError
from content_pipeline.generation.stats import RunStats
from content_pipeline.ledger.inflight import Booked
from content_pipeline.llm.pacing import PacerStats
from content_pipeline.money import to_usd, usd
from content_pipeline.settings import Settings
from content_pipeline.store import RequestCounts, Store, layout
from content_pipeline.views.snapshot import read_master

if TYPE_CHECKING:
    from content_pipeline.batches.submit import Submitted

MAX_INVALID_SHOWN = 50


@dataclass
class RunReport:
    """What one run did; rendered as markdown for the terminal, the store and the Prefect artifact."""

    run_id: str
    store: str
    model: str
    strong_model: str
    offline: bool
    evidence_only: bool
    scope: str
    limit: int
    budget_usd: float
    catalogue_rows: int = 0
    catalogue_valid: int = 0
    catalogue_complete: bool = True  # False: reading stopped once LIMIT items needing content were found
    invalid_rows: list[str] = field(default_factory=list)
    needs_content: int = 0
    changed: int = 0  # of those, done items changed since their success
    restored: int = 0  # of those, changed back to an earlier success's inputs: restored from it, no call
    claimed: int = 0
    held_elsewhere: list[str] = field(default_factory=list)  # other live runs' claims: how many, whose, until
    preflight_dropped: dict[str, int] = field(default_factory=dict)
    stats: RunStats = field(default_factory=RunStats)
    spend_usd: float = 0.0
    stage: str = "start"
    stop_reason: str | None = None
    failure: str | None = None  # the stage that failed, the error and the spend so far
    error: PipelineError | None = field(default=None, repr=False)  # what failed it
    consolidations: int = 0
    audit_ok: bool | None = None
    audit_violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    requests: RequestCounts | None = None
    pacing: PacerStats | None = None
    primary_down: str | None = None  # why calls went to FALLBACK_MODEL (the primary's failure), if they did
    crashed: Booked | None = None  # calls in flight at a crash (this run's or another's), booked
    batches: Submitted | None = None  # batch mode: what was planned and submitted

    @classmethod
    def start(cls, settings: Settings, store: Store) -> RunReport:
        assert settings.run_id is not None
        return cls(
            run_id=settings.run_id,
            store=store.url,
            model=settings.model,
            strong_model=settings.strong_model,
            offline=settings.offline,
            evidence_only=settings.evidence_only,
            scope=settings.scope,
            limit=settings.limit,
            budget_usd=settings.budget_usd,
        )

    @property
    def ok(self) -> bool:
        return self.failure is None

    def fail(self, error: PipelineError) -> None:
        """The run failed in its current stage: the one line a notification carries."""
        self.error, self.stop_reason = error, str(error)
        self.failure = f"{self.stage}: {error} (spent ${self.spend_usd:.4f} of {usd(self.budget_usd)})"

    def summary(self, finished_at: str) -> dict[str, object]:
        """The run in one JSON object: how it ended, what it did and spent (health reads the last one)."""
        stats = self.stats
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "failure": self.failure,
            "stage": self.stage,
            "finished_at": finished_at,
            "duration_s": round(self.duration_s, 3),
            "successes": stats.successes,
            "rejects": stats.rejects,
            "spend_usd": round(self.spend_usd, 9),
            "budget_usd": self.budget_usd,
            "evidence_only": self.evidence_only,
        }

    def markdown(self) -> str:
        lines = [f"# go-live run {self.run_id}", "", *self._summary()]
        if self.stop_reason:
            lines.append(f"- stopped early: {self.stop_reason}")
        reasons = self.stats.reject_reasons
        if reasons:
            lines += ["", "## Rejects by reason", "", "| reason | count |", "|---|---|"]
            lines += [f"| {reason} | {count} |" for reason, count in reasons.most_common()]
        if self.invalid_rows:
            lines += ["", "## Invalid catalogue rows (skipped)", ""]
            lines += [f"- {line}" for line in self.invalid_rows[:MAX_INVALID_SHOWN]]
            if len(self.invalid_rows) > MAX_INVALID_SHOWN:
                lines.append(f"- ... and {len(self.invalid_rows) - MAX_INVALID_SHOWN} more")
        if self.audit_violations:
            lines += ["", "## Audit violations", ""] + [f"- {v}" for v in self.audit_violations]
        lines += ["", "## Outputs", "", *self._outputs()]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def _summary(self) -> list[str]:
        mode = (
            "offline model (no OPENAI_API_KEY: in-process, deterministic)" if self.offline else "OpenAI-compatible API"
        )
        st = self.stats
        audit = "not run" if self.audit_ok is None else ("green" if self.audit_ok else "FAILED")
        probe = " (EVIDENCE_ONLY: read-only, nothing spent)" if self.evidence_only else ""
        lines = [
            f"- store: `{self.store}`",
            f"- model: {self.model} (escalation: {self.strong_model}) via {mode}",
            f"- scope: {self.scope}, limit {self.limit}{probe}",
            f"- catalogue: {self.catalogue_rows} rows{'' if self.catalogue_complete else ' read (enough for the limit)'}, "
            f"{self.catalogue_valid} valid, {len(self.invalid_rows)} invalid",
            f"- needs content: {self.needs_content} ({self.changed} changed since their success, {self.restored} of "
            "them restored from an earlier success at no cost); "
            f"claimed: {self.claimed}; "
            f"preflight dropped: {sum(self.preflight_dropped.values())}",
            *[f"- held by another run (not claimable now): {line}" for line in self.held_elsewhere],
            f"- generated: {st.decided} ({st.successes} successes, {st.rejects} rejects, "
            f"{st.escalations} escalated); skipped as already decided: {st.skipped}; not attempted: {st.not_attempted}",
            f"- spend: ${self.spend_usd:.4f} of {usd(self.budget_usd)} budget ({self.spend_usd / self.budget_usd:.1%} "
            f"used) over {st.calls - st.failed_calls} "
            f"answered calls and {st.failed_calls} failed attempt(s) (retried, or the item rejected with the cause)",
            f"- tokens: {st.tokens_in} in ({st.tokens_cached} of them cached), {st.tokens_out} out",
        ]
        if self.batches is not None:
            b = self.batches
            lines.append(
                f"- batch mode: {b.requests} request(s) planned in {len(b.planned)} batch(es), "
                f"{usd(to_usd(b.reserved_nano))} reserved at the batch price; {len(b.submitted)} batch(es) submitted"
                f"{f', {len(b.found_again)} found again by listing' if b.found_again else ''}; "
                "`content-pipeline collect` settles them"
            )
        if self.crashed is not None and self.crashed.calls:
            lines.append(f"- {self.crashed.line()}")
        if self.requests:
            lines.append(f"- {self.requests.line(st.decided)}")
        pacing = self.pacing
        if pacing and (pacing.paced_calls or pacing.told_to_wait or pacing.ramped_calls):
            lines.append(
                f"- provider pacing: {pacing.ramped_calls} call(s) held {pacing.ramped_s:.1f} s by the slow start "
                f"before the first rate-limit headers; {pacing.paced_calls} call(s) spaced out over "
                f"{pacing.paced_s:.1f} s from those headers; told to wait (Retry-After) {pacing.told_to_wait} time(s)"
            )
        if self.primary_down is not None:
            lines.append(
                f"- fallback: the primary provider failed ({self.primary_down}); {st.fallback_calls} call(s) went to "
                "FALLBACK_MODEL (each call's record names its provider)"
            )
        if pacing and pacing.answers and not pacing.headers:
            lines.append(
                f"- provider pacing: none of the provider's {pacing.answers} answer(s) carried rate-limit headers "
                "(x-ratelimit-*): only the slow start, CONCURRENCY and Retry-After paced the run"
            )
        lines += [f"- consolidations: {self.consolidations}; audit: {audit}", f"- duration: {self.duration_s:.1f} s"]
        return lines

    def _outputs(self) -> list[str]:
        files = ", ".join((layout.REPORT, layout.BATCH, layout.INVALID_ROWS))
        return [
            f"- ledger (the source of truth): `{self.store}/{layout.ledger_dir(self.run_id)}`",
            f"- master views (successes, rejects, processed, rejected, usage, checkpoint): the objects "
            f"`{self.store}/{layout.MANIFEST}` names; print one with `content-pipeline view successes`",
            f"- this run: `{self.store}/{layout.run_dir(self.run_id)}` ({files})",
        ]


def run_rejects(store: Store, run_id: str) -> list[dict[str, str]]:
    """The rejects master holds for this run: slug, reason and error, for a table."""
    rejects = read_master(store, "rejects")
    if rejects.is_empty():
        return []
    mine = rejects.filter(rejects["run_id"] == run_id).select("slug", "reason", "error")
    return [{k: str(v)[:300] for k, v in row.items()} for row in mine.iter_rows(named=True)]
