"""template-rank's decisions: on a ledger with known pass rates (TEMPLATE_REWARD=qa_pass) it retires only the
template the evidence shows worse and promotes nobody it cannot show best; --apply changes what the next run
uses, and the decision record holds the evidence and the change. On planted engagement (two templates, one
truly better, with noise), daily checks promote the better one within the horizon and, when the two are alike,
never promote either over 30 daily checks (the false-promotion rate over many seeds: `make bench`, scenario 8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from content_pipeline.generation.templates import (
    DEFAULT,
    PromptTemplate,
    active_templates,
    read_active,
    save_template,
    write_active,
)
from content_pipeline.ledger.scan import read_records
from content_pipeline.ledger.spend import stamp
from content_pipeline.ops.qa_evidence import wilson
from content_pipeline.ops.template_rank import decide, judge, rank_templates
from content_pipeline.rehearsal.planted import known_by, plant
from content_pipeline.store import Store
from tests.conftest import make_item
from tests.support.helpers import record, run, write_ledger

A, B, C, D = DEFAULT.key, "catalogue-item:2", "short-copy:1", "old:1"
AT = stamp(datetime.now(UTC) - timedelta(days=2))


def template(key: str) -> PromptTemplate:
    template_id, version = key.split(":")
    system = f"{DEFAULT.system} ({template_id} {version}: keep it short.)"
    return PromptTemplate(id=template_id, version=version, system=system, user=DEFAULT.user)


def outcomes_of(key: str, passed: int, failed: int, transient: int = 0) -> list:
    template_id, version = key.split(":")
    tag = {"prompt_template": template_id, "prompt_version": version, "at": AT}
    qa = {"reason": "length", "error": "length: description has 12 characters"}
    rate_limited = {"reason": "provider_error", "error": "provider_error: rate limited (429)", "retryable": True}
    return (
        [record(f"{template_id}-{version}-ok-{n}", **tag) for n in range(passed)]
        + [record(f"{template_id}-{version}-qa-{n}", "reject", **tag, **qa) for n in range(failed)]
        + [record(f"{template_id}-{version}-rl-{n}", "reject", **tag, **rate_limited) for n in range(transient)]
    )


@pytest.fixture
def ranked_store(store: Store) -> Store:
    for key in (B, C, D):
        save_template(store, template(key))
    write_active(store, {A: 1, B: 1, C: 1}, read_active(store)[1])
    ledger = (
        outcomes_of(A, 45, 5) + outcomes_of(B, 25, 25) + outcomes_of(C, 35, 15, transient=10) + outcomes_of(D, 10, 0)
    )
    write_ledger(store, ledger)
    return store


def test_only_the_template_the_evidence_shows_worse_is_retired(ranked_store: Store, make_settings) -> None:
    ranking = rank_templates(ranked_store, make_settings(template_reward="qa_pass"), "30d")
    rows = {r.template: r for r in ranking.rows}
    assert [r.template for r in ranking.rows] == [A, C, B, D]  # active ones by mean reward, then the inactive
    assert (rows[A].posts, rows[A].mean, rows[B].mean, rows[C].posts) == (50, 0.9, 0.5, 50)  # transient left out
    assert (rows[A].qa.n, rows[A].qa.passed) == (50, 45) and wilson(45, 50)[0] < 0.9 < wilson(45, 50)[1]
    assert rows[C].qa.cost_per_success_usd == pytest.approx(0.0001 * 60 / 35)
    compared = {c.other: c for c in ranking.compared}
    assert compared[B].cleared and compared[B].bar == 2 / 0.05  # two comparisons, each at alpha / 2
    assert not compared[C].cleared and 1 < compared[C].ratio < compared[C].bar
    assert rows[A].note == "leader" and rows[C].note == "not enough evidence against the leader"
    assert rows[B].note == "worse than the leader: retire" and rows[D].note == "inactive: shown, not decided"
    assert (ranking.retire, ranking.promote) == ([B], [])  # A is not shown better than C: nobody promoted
    assert ranking.verdict == "retire catalogue-item:2 (the evidence clears the bar)"
    assert ranking.active_after == {A: 1, C: 1}


def test_too_few_posts_is_not_enough_evidence(ranked_store: Store, make_settings) -> None:
    ranking = rank_templates(ranked_store, make_settings(template_reward="qa_pass", template_min_posts=60), "30d")
    assert ranking.compared == [] and (ranking.retire, ranking.promote) == ([], [])
    assert ranking.verdict.startswith("not enough evidence: ") and "short of 60 posts" in ranking.verdict
    assert ranking.active_after == ranking.active_before == {A: 1, B: 1, C: 1}


def test_no_engagement_yet_is_not_enough_evidence(ranked_store: Store, make_settings) -> None:
    ranking = decide(ranked_store, rank_templates(ranked_store, make_settings(), "30d"), apply=True)
    assert ranking.reward == "ctr" and all(r.posts == 0 for r in ranking.rows)
    assert ranking.verdict == f"not enough evidence: {A}, {B}, {C} short of 20 posts"
    assert not ranking.applied and read_active(ranked_store)[0] == {A: 1, B: 1, C: 1}
    assert "active set unchanged" in ranking.lines()


def test_apply_changes_what_the_next_run_uses_and_the_decision_holds_the_evidence(
    ranked_store: Store, make_settings, write_catalogue
) -> None:
    slugs = [f"item-{n:04d}" for n in range(200, 260)]
    before = {active_templates(ranked_store).for_slug(s).key for s in slugs}
    assert before == {A, B, C}
    settings = make_settings(template_reward="qa_pass")

    dry = decide(ranked_store, rank_templates(ranked_store, settings, "30d"), apply=False)
    assert not dry.applied and read_active(ranked_store)[0] == {A: 1, B: 1, C: 1}
    applied = decide(ranked_store, rank_templates(ranked_store, settings, "30d"), apply=True)
    assert applied.applied and read_active(ranked_store)[0] == {A: 1, C: 1}

    decision = json.loads(ranked_store.get(applied.decision))
    assert decision["delta"] == {"retired": [B], "added": [], "reweighted": {}, "applied": True}
    evidence = {r["template"]: (r["posts"], r["mean"], r["note"]) for r in decision["rows"]}
    assert evidence[B] == (50, 0.5, "worse than the leader: retire")
    assert decision["active_before"] == {A: 1, B: 1, C: 1} and decision["retire"] == [B]
    assert [c["other"] for c in decision["compared"] if c["cleared"]] == [B]

    catalogue = write_catalogue([make_item(n) for n in range(200, 260)])
    report = run(make_settings(catalogue=catalogue, run_id="after-rank"), ranked_store)
    assert report.ok and report.stats.successes == 60
    used = {f"{r.prompt_template}:{r.prompt_version}" for r in read_records(ranked_store) if r.run_id == "after-rank"}
    assert used == {A, C}  # the retired template is no longer used


CHECKS, WINDOW, PER_DAY = 30, 7, 10


def first_decision(seed: int, ctrs: dict[str, float]) -> tuple[int, list[str], list[str]] | None:
    """The day of 30 daily checks on planted engagement a decision was first made, and what it was."""
    posts = plant(seed, ctrs, CHECKS, PER_DAY)
    for day in range(CHECKS):
        judged = judge(known_by(posts, day, WINDOW), {"a:1": 1, "b:1": 1}, 0.05, 20)
        if judged.promote or judged.retire:
            return day, judged.promote, judged.retire
    return None


@pytest.mark.parametrize("seed", range(10))
def test_daily_checks_promote_the_truly_better_template_within_the_horizon(seed: int) -> None:
    decided = first_decision(seed, {"a:1": 0.030, "b:1": 0.039})  # b: 30% more clicks per impression
    assert decided is not None, "never promoted in 30 daily checks"
    day, promote, retire = decided
    assert (promote, retire) == (["b:1"], ["a:1"]) and day < CHECKS


@pytest.mark.parametrize("seed", range(10))
def test_daily_checks_of_two_alike_templates_never_promote_either(seed: int) -> None:
    assert first_decision(seed, {"a:1": 0.03, "b:1": 0.03}) is None
