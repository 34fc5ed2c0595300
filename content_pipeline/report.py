"""The run report: counts, spend against budget, tokens, rejects by reason, duration."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from content_pipeline.ledger import OutcomeRecord
from content_pipeline.pacing import PacerStats
from content_pipeline.store import RequestCounts, Store
from content_pipeline.views import read_master


@dataclass
class RunStats:
    """Counters of a generation run, shared by every chunk (thread-safe)."""

    successes: int = 0
    rejects: int = 0
    escalations: int = 0
    calls: int = 0
    failed_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    skipped: int = 0
    not_attempted: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, record: OutcomeRecord) -> int:
        """Count a decided item; returns the successes so far, this one included (each count seen once)."""
        with self._lock:
            if record.status == "success":
                self.successes += 1
            else:
                self.rejects += 1
                self.reject_reasons[record.reason or "unknown"] += 1
            self.escalations += record.escalated
            self.calls += len(record.calls)
            self.failed_calls += sum(c.outcome.startswith("failed") for c in record.calls)
            self.tokens_in += record.tokens_in
            self.tokens_out += record.tokens_out
            return self.successes

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


@dataclass
class RunReport:
    """What one run did; rendered as markdown for the terminal and the Prefect artifact."""

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
    invalid_rows: list[str] = field(default_factory=list)
    needs_content: int = 0
    claimed: int = 0
    preflight_dropped: dict[str, int] = field(default_factory=dict)
    stats: RunStats = field(default_factory=RunStats)
    spend_usd: float = 0.0
    stage: str = "start"
    stop_reason: str | None = None
    consolidations: int = 0
    audit_ok: bool | None = None
    audit_violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    requests: RequestCounts | None = None
    pacing: PacerStats | None = None

    def markdown(self) -> str:
        mode = (
            "offline model (no OPENAI_API_KEY: in-process, deterministic)" if self.offline else "OpenAI-compatible API"
        )
        st = self.stats
        audit = "not run" if self.audit_ok is None else ("green" if self.audit_ok else "FAILED")
        lines = [
            f"# go-live run {self.run_id}",
            "",
            f"- store: `{self.store}`",
            f"- model: {self.model} (escalation: {self.strong_model}) via {mode}",
            f"- scope: {self.scope}, limit {self.limit}"
            + (" (EVIDENCE_ONLY: read-only, nothing spent)" if self.evidence_only else ""),
            f"- catalogue: {self.catalogue_rows} rows, {self.catalogue_valid} valid, {len(self.invalid_rows)} invalid",
            f"- needs content: {self.needs_content}; claimed: {self.claimed}; "
            + f"preflight dropped: {sum(self.preflight_dropped.values())}",
            f"- generated: {st.successes + st.rejects} ({st.successes} successes, {st.rejects} rejects, "
            f"{st.escalations} escalated); skipped as already decided: {st.skipped}; not attempted: {st.not_attempted}",
            f"- spend: ${self.spend_usd:.4f} of ${self.budget_usd:.2f} budget over {st.calls - st.failed_calls} "
            f"answered calls and {st.failed_calls} failed attempt(s) (retried, or the item rejected with the cause)",
            f"- tokens: {st.tokens_in} in, {st.tokens_out} out",
            *([f"- {self.requests.line(st.successes + st.rejects)}"] if self.requests else []),
            *(
                [
                    f"- provider pacing: {self.pacing.paced_calls} call(s) spaced out over {self.pacing.paced_s:.1f} s "
                    f"from its rate-limit headers; told to wait (Retry-After) {self.pacing.told_to_wait} time(s)"
                ]
                if self.pacing and (self.pacing.paced_calls or self.pacing.told_to_wait)
                else []
            ),
            f"- consolidations: {self.consolidations}; audit: {audit}",
            f"- duration: {self.duration_s:.1f} s",
        ]
        if self.stop_reason:
            lines.append(f"- stopped early: {self.stop_reason}")
        if st.reject_reasons:
            lines += ["", "## Rejects by reason", "", "| reason | count |", "|---|---|"]
            lines += [f"| {reason} | {count} |" for reason, count in st.reject_reasons.most_common()]
        if self.invalid_rows:
            lines += ["", "## Invalid catalogue rows (skipped)", ""] + [f"- {line}" for line in self.invalid_rows[:50]]
            if len(self.invalid_rows) > 50:
                lines.append(f"- ... and {len(self.invalid_rows) - 50} more")
        if self.audit_violations:
            lines += ["", "## Audit violations", ""] + [f"- {v}" for v in self.audit_violations]
        lines += [
            "",
            "## Outputs",
            "",
            f"- ledger (the source of truth): `{self.store}/ledger/{self.run_id}/`",
            f"- master views (successes, rejects, processed, rejected, usage, checkpoint): the objects "
            f"`{self.store}/master/manifest.json` names; print one with `content-pipeline view successes`",
            f"- this run: `{self.store}/runs/{self.run_id}/` (report.md, batch.jsonl, invalid-rows.jsonl)",
        ]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def run_rejects(store: Store, run_id: str) -> list[dict[str, str]]:
    """The rejects master holds for this run: slug, reason and error, for a table."""
    rejects = read_master(store, "rejects")
    if rejects.is_empty():
        return []
    mine = rejects.filter(rejects["run_id"] == run_id).select("slug", "reason", "error")
    return [{k: str(v)[:300] for k, v in row.items()} for row in mine.iter_rows(named=True)]
