"""template-rank on a ledger with known pass rates per template: it names the right templates to retire and
to promote, with sample sizes and a significance note; --apply changes what the next run uses, and the
decision record holds the evidence and the change."""

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
from content_pipeline.ops.template_rank import decide, rank_templates, wilson
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


def test_the_ranking_names_the_bottom_to_retire_and_the_top_to_promote(ranked_store: Store) -> None:
    ranking = rank_templates(ranked_store, "30d")
    rows = {r.template: r for r in ranking.rows}
    assert [r.template for r in ranking.rows] == [D, A, C, B]
    assert (rows[A].n, rows[A].passed, rows[B].pass_rate, rows[C].n) == (50, 45, 0.5, 50)  # transient rejects left out
    assert rows[A].interval == wilson(45, 50) and rows[C].cost_per_success_usd == pytest.approx(0.0001 * 60 / 35)
    assert rows[D].note == "small sample (n<30): not significant" and not rows[D].active
    assert rows[A].note == "leader"
    assert rows[C].note == "not significantly below the leader (95% intervals overlap)"
    assert rows[B].note == "significantly below the leader (95%)"
    assert (ranking.retire, ranking.promote, ranking.kept) == ([B], [A], [])
    assert ranking.active_after == {A: 2, C: 1}


def test_apply_changes_what_the_next_run_uses_and_the_decision_holds_the_evidence(
    ranked_store: Store, make_settings, write_catalogue
) -> None:
    slugs = [f"item-{n:04d}" for n in range(200, 260)]
    before = {active_templates(ranked_store).for_slug(s).key for s in slugs}
    assert before == {A, B, C}

    dry = decide(ranked_store, rank_templates(ranked_store, "30d"), apply=False)
    assert not dry.applied and read_active(ranked_store)[0] == {A: 1, B: 1, C: 1}
    applied = decide(ranked_store, rank_templates(ranked_store, "30d"), apply=True)
    assert applied.applied and read_active(ranked_store)[0] == {A: 2, C: 1}

    decision = json.loads(ranked_store.get(applied.decision))
    assert decision["delta"] == {"retired": [B], "reweighted": {A: [1, 2]}, "applied": True}
    evidence = {r["template"]: (r["n"], r["passed"], r["note"]) for r in decision["rows"]}
    assert evidence[B] == (50, 25, "significantly below the leader (95%)")
    assert decision["active_before"] == {A: 1, B: 1, C: 1} and decision["retire"] == [B]

    catalogue = write_catalogue([make_item(n) for n in range(200, 260)])
    report = run(make_settings(catalogue=catalogue, run_id="after-rank"), ranked_store)
    assert report.ok and report.stats.successes == 60
    used = {f"{r.prompt_template}:{r.prompt_version}" for r in read_records(ranked_store) if r.run_id == "after-rank"}
    assert used == {A, C}  # the retired template is no longer used; the promoted one takes two shares
