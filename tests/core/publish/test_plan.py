"""What one publish run plans with the quality gate: a post that nearly copies another of the same run is held,
naming it (generation's own near-copy check sees descriptions only, and only of its run's index), and a post
that nearly copies its own earlier version is not. The master view is given as a frame here: that is the
only thing `plan` reads from the store, and no generation makes two near-copies on purpose."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from content_pipeline.generation.content import ItemContent
from content_pipeline.publish import plan as planning
from content_pipeline.publish.history import History, PostState
from content_pipeline.publish.post import post_for
from content_pipeline.publish.quality import QualityRules

CONTENT = {
    "headline": "Sample Widget: a steel frame for every kitchen",
    "description": "Meet the Sample Widget, a kitchen pick at $12.00. It offers a 3 cm steel frame and two colour "
    "options. Every detail is listed plainly, so you know what you get before you buy, and it is ready "
    "for everyday use from the day it arrives.",
    "highlights": ["A 3 cm steel frame", "Two colour options", "Rated for 6 uses a day"],
    "seo_description": "The Sample Widget: a steel frame, two colours, and ready for daily use.",
}


def contents(rows: list[tuple[str, dict[str, Any]]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "slug": [s for s, _ in rows],
            "content": [c for _, c in rows],
            "finished_at": ["2026-12-07"] * len(rows),
            "fallback": [False] * len(rows),
        }
    )


@pytest.fixture
def master(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(planning, "read_contents", lambda store: contents(rows))
    return rows


def test_a_near_copy_of_a_post_of_the_same_run_is_held(master) -> None:
    master += [("first", CONTENT), ("twin", {**CONTENT, "headline": "Another widget"}), ("other", CONTENT)]
    master[2] = ("other", {**CONTENT, "description": "A garden hose of 44 m, rust-proof and light. " * 3})
    found = planning.plan(None, "wp", {}, History(), set(), 20, rules=QualityRules(min_words=0))  # type: ignore[arg-type]
    assert [c.post.slug for c in found.candidates] == ["first", "other"]
    [(slug, why)] = found.held
    assert slug == "twin" and why.startswith("nearly copies the published post of 'first' (Jaccard ")


def test_an_update_is_not_a_copy_of_its_own_live_post(master) -> None:
    master += [("first", {**CONTENT, "headline": "Sample Widget, now in green"})]
    history = History()
    live = post_for("first", ItemContent.model_validate(CONTENT), None).body_html  # the same body, live already
    history.posts[("wp", "first")] = PostState(live_hash="old", post_id="7", payload={"content": live})
    found = planning.plan(None, "wp", {}, history, set(), 20, rules=QualityRules(min_words=0))  # type: ignore[arg-type]
    assert [c.post.slug for c in found.candidates] == ["first"] and found.held == []
