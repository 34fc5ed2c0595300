"""template-rank: the active prompt templates compared on what readers did, with the post as the unit (each post's
click-through or metric over its first days, TEMPLATE_REWARD), by an always-valid sequential test, so checking
daily crowns no false winner. It promotes the leader and retires a loser only when the evidence clears the bar,
and says "not enough evidence" otherwise; QA pass rate and cost per success are shown beside. Every decision is
recorded with its evidence and the change to the active set."""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from content_pipeline.configs import EngagementConfig
from content_pipeline.generation.templates import MAX_WEIGHT, read_active, write_active
from content_pipeline.ops.kpis import PERIODS
from content_pipeline.ops.qa_evidence import QaEvidence, qa_evidence
from content_pipeline.ops.rewards import rewards_by_template
from content_pipeline.ops.sequential import Evidence, Sample, compare
from content_pipeline.store import Store, layout


@dataclass
class Ranked:
    """One template's evidence: its posts' reward (count, mean, standard deviation), QA and cost, and a note."""

    template: str
    active: bool
    weight: int
    posts: int
    mean: float | None
    sd: float | None
    qa: QaEvidence
    note: str = ""


@dataclass
class Compared:
    """The leader against one other template: the difference of mean reward, its standard error, the mixture
    ratio and the bar it had to reach (1 / (alpha / comparisons)), and whether it did."""

    leader: str
    other: str
    diff: float
    se: float
    ratio: float
    bar: float
    cleared: bool


@dataclass
class Ranking:
    """A check and its decision: the evidence, the comparisons, what to promote and retire (only what cleared the
    bar), the verdict, the active set before and after, whether it was applied, and where it is recorded."""

    reward: str
    as_of: str
    period: str
    alpha: float
    min_posts: int
    rows: list[Ranked]
    compared: list[Compared]
    promote: list[str]
    retire: list[str]
    verdict: str
    active_before: dict[str, int]
    active_after: dict[str, int]
    applied: bool = False
    decision: str | None = None
    kind: str = "rank"

    def lines(self) -> list[str]:
        out = [f"template-rank as of {self.as_of}, reward {self.reward} per post (QA and cost over {self.period}):"]
        for i, r in enumerate(self.rows, 1):
            reward = "-" if r.mean is None else f"{r.mean:.4g} (sd {r.sd or 0:.3g})"
            flag = f" (active, weight {r.weight})" if r.active else " (inactive)"
            out.append(f"{i:>2}. {r.template}{flag}: {r.posts} post(s), mean {reward}; {r.qa.line()}; {r.note}")
        out += [
            f"{c.leader} vs {c.other}: {c.diff:+.4g} (se {c.se:.3g}), evidence {c.ratio:.3g} of {c.bar:.3g} needed"
            for c in self.compared
        ]
        out.append(self.verdict)
        change = f"active set {self.active_before} -> {self.active_after}"
        if self.active_after == self.active_before:
            out.append("active set unchanged")
        else:
            out.append(f"applied: {change}" if self.applied else f"not applied (--apply would make: {change})")
        if self.decision:
            out.append(f"decision recorded: {self.decision}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rows(samples: dict[str, list[float]], qa: dict[str, QaEvidence], active: dict[str, int]) -> list[Ranked]:
    rows = []
    for key in sorted(set(samples) | set(qa) | set(active)):
        values = samples.get(key, [])
        s = Sample.of(values) if values else None
        rows.append(
            Ranked(
                template=key,
                active=key in active,
                weight=active.get(key, 0),
                posts=len(values),
                mean=s.mean if s else None,
                sd=math.sqrt(s.var) if s else None,
                qa=qa.get(key, QaEvidence()),
            )
        )
    rows.sort(key=lambda r: (not r.active, -(r.mean if r.mean is not None else -math.inf), r.template))
    return rows


def _compare(rows: list[Ranked], samples: dict[str, list[float]], alpha: float, min_posts: int) -> list[Compared]:
    """The leader (the best mean among the active templates with enough posts) against each other one of them,
    each at alpha / (their number - 1)."""
    eligible = [r for r in rows if r.active and r.posts >= min_posts]
    if len(eligible) < 2:
        return []
    leader, bar = eligible[0], (len(eligible) - 1) / alpha
    found = []
    for other in eligible[1:]:
        ev: Evidence = compare(Sample.of(samples[leader.template]), Sample.of(samples[other.template]))
        found.append(Compared(leader.template, other.template, ev.diff, ev.se, ev.ratio, bar, ev.ratio >= bar))
    return found


def _note(row: Ranked, compared: list[Compared], min_posts: int) -> str:
    """What the evidence says of one template."""
    if not row.active:
        return "inactive: shown, not decided"
    if row.posts < min_posts:
        return f"fewer than {min_posts} posts: not compared"
    if not compared:
        return "the only template with enough posts"
    if row.template == compared[0].leader:
        return "leader"
    against = next(c for c in compared if c.other == row.template)
    return "worse than the leader: retire" if against.cleared else "not enough evidence against the leader"


def _verdict(rows: list[Ranked], compared: list[Compared], min_posts: int) -> tuple[list[str], list[str], str]:
    """What to promote and retire, and the verdict line; each row's note."""
    active = [r for r in rows if r.active]
    short = [r.template for r in active if r.posts < min_posts]
    retire = [c.other for c in compared if c.cleared]
    promote = [compared[0].leader] if compared and not short and all(c.cleared for c in compared) else []
    for row in rows:
        row.note = _note(row, compared, min_posts)
    if len(active) < 2:
        return [], [], "nothing to compare: fewer than two active templates"
    if promote or retire:
        said = [f"{verb} {', '.join(keys)}" for verb, keys in (("promote", promote), ("retire", retire)) if keys]
        return promote, retire, "; ".join(said) + " (the evidence clears the bar)"
    why = f"{', '.join(short)} short of {min_posts} posts" if short else "no difference clears the bar yet"
    return [], [], f"not enough evidence: {why}"


@dataclass
class Judged:
    """What the evidence says: the rows, the leader's comparisons, what to promote and retire, the verdict."""

    rows: list[Ranked]
    compared: list[Compared]
    promote: list[str]
    retire: list[str]
    verdict: str


def judge(
    samples: dict[str, list[float]],
    active: dict[str, int],
    alpha: float,
    min_posts: int,
    qa: dict[str, QaEvidence] | None = None,
) -> Judged:
    """The decision the reward samples (template -> one value per post) support for the `active` set."""
    rows = _rows(samples, qa or {}, active)
    compared = _compare(rows, samples, alpha, min_posts)
    return Judged(rows, compared, *_verdict(rows, compared, min_posts))


def _after(active: dict[str, int], promote: list[str], retire: list[str]) -> dict[str, int]:
    after = {key: weight for key, weight in active.items() if key not in retire}
    for key in promote:
        after[key] = min(MAX_WEIGHT, after.get(key, 1) + 1)
    return after or dict(active)


def rank_templates(store: Store, config: EngagementConfig, period: str = "30d", as_of: date | None = None) -> Ranking:
    """Compare the active templates on the evidence known at the end of `as_of` (today when None)."""
    day = as_of or datetime.now(UTC).date()
    end = min(datetime.combine(day + timedelta(days=1), time(), UTC), datetime.now(UTC))
    active, _ = read_active(store)
    qa = qa_evidence(store, end - PERIODS[period], end)
    samples = rewards_by_template(store, config, day, qa_units=config.template_reward == "qa_pass")
    judged = judge(samples, active, config.template_alpha, config.template_min_posts, qa)
    return Ranking(
        config.template_reward,
        day.isoformat(),
        period,
        config.template_alpha,
        config.template_min_posts,
        judged.rows,
        judged.compared,
        judged.promote,
        judged.retire,
        judged.verdict,
        dict(active),
        _after(active, judged.promote, judged.retire),
    )


def decide(store: Store, ranking: Ranking, apply: bool) -> Ranking:
    """Record the decision (evidence and change) in the store; with `apply`, make its active set current."""
    if apply and ranking.active_after != ranking.active_before:
        _, version = read_active(store)
        write_active(store, ranking.active_after, version)
        ranking.applied = True
    ranking.decision = record_decision(
        store, ranking.to_dict(), ranking.active_before, ranking.active_after, ranking.applied
    )
    return ranking


def record_decision(
    store: Store, body: dict[str, Any], before: dict[str, int], after: dict[str, int], applied: bool
) -> str:
    """Keep a decision (what it saw, the active set before and after, whether it was made current); its key."""
    at = datetime.now(UTC)
    key = f"{layout.TEMPLATE_DECISIONS}{at:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}.json"
    delta = {
        "retired": sorted(set(before) - set(after)),
        "added": sorted(set(after) - set(before)),
        "reweighted": {k: [before[k], after[k]] for k in sorted(set(before) & set(after)) if before[k] != after[k]},
        "applied": applied,
    }
    whole = {**body, "at": at.isoformat(timespec="seconds"), "active_before": before, "active_after": after}
    store.put(key, json.dumps({**whole, "delta": delta}, sort_keys=True, indent=1, default=str).encode())
    return key
