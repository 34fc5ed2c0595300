"""QA on content: schema, bounds, error or refusal text, fields used, near-copies."""

from __future__ import annotations

import json

import pytest

from content_pipeline.generation import qa
from content_pipeline.generation.content import BOUNDS, HIGHLIGHTS, RESPONSE_FORMAT, ItemContent
from content_pipeline.generation.nearcopy import NearCopyIndex, sketch
from content_pipeline.generation.prompts import SYSTEM_PROMPT
from content_pipeline.intake.catalogue import Item
from content_pipeline.llm import offline
from tests.conftest import make_item

ITEM = Item(**make_item(3))


def good() -> dict:
    return offline.write_content(ITEM.model_dump(), strong=False)


def verdict_of(content: dict) -> qa.Verdict:
    parsed, verdict = qa.parse_content(json.dumps(content), "stop", None)
    return verdict if parsed is None else qa.check_content(parsed, ITEM)


def test_good_content_passes() -> None:
    assert verdict_of(good()).ok


@pytest.mark.parametrize(
    ("text", "finish", "refusal", "reason"),
    [
        (None, "stop", "I can't help with that.", "refusal"),
        ('{"headline": "cut', "length", None, "truncated"),
        ("{}", "content_filter", None, "content_filter"),
        ("", "stop", None, "empty"),
        ("not json at all", "stop", None, "schema"),
        ('{"headline": "x"}', "stop", None, "schema"),
        (json.dumps({**make_item(1), "extra": 1}), "stop", None, "schema"),
    ],
)
def test_answers_that_are_not_content(text, finish, refusal, reason) -> None:
    parsed, verdict = qa.parse_content(text, finish, refusal)
    assert parsed is None and verdict.reason == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"description": "Too short."}, "length"),
        ({"highlights": ["only one"]}, "length"),
        ({"seo_description": "x" * 200}, "length"),
        ({"description": "I'm sorry, but as an AI I cannot write this. " * 6}, "error_text"),
        ({"description": "Error: upstream timed out. Traceback (most recent call last): " * 5}, "error_text"),
        ({"description": SYSTEM_PROMPT.split("The item")[0] * 3}, "prompt_leak"),
        (
            {
                "headline": "A lovely thing for you",
                "description": "A lovely thing. " * 20,
                "seo_description": "A lovely thing for your home, in stock and ready to ship today.",
            },
            "fields_unused",
        ),
    ],
)
def test_content_that_fails_qa(change, reason) -> None:
    assert verdict_of({**good(), **change}).reason == reason


def test_near_copy_is_caught_and_distinct_content_is_not() -> None:
    index = NearCopyIndex()
    a = ItemContent(**good()).description
    other = offline.write_content(Item(**make_item(40)).model_dump(), strong=False)["description"]
    assert index.claim("a", sketch(a)).ok
    assert index.claim("b", sketch(other)).ok
    copy = index.claim("c", sketch(a.replace("Meet", "Discover")))
    assert copy.reason == "near_copy" and "'a'" in copy.detail
    assert index.claim("a", sketch(a)).ok  # the same item again is not a copy of itself


def test_the_prompt_and_the_schema_state_the_bounds_qa_checks() -> None:
    """One place for the bounds: the prompt tells the model what QA will hold it to."""
    for name, (low, high) in BOUNDS.items():
        assert f"{name} ({low}-{high} characters" in SYSTEM_PROMPT
    assert f"highlights ({HIGHLIGHTS[0]}-{HIGHLIGHTS[1]} short lines" in SYSTEM_PROMPT
    too_long = {**good(), "headline": "H" * (BOUNDS["headline"][1] + 1)}
    assert verdict_of(too_long).reason == "length"


def test_the_response_schema_is_the_content_models_in_strict_form() -> None:
    schema = RESPONSE_FORMAT["json_schema"]["schema"]
    assert RESPONSE_FORMAT["type"] == "json_schema" and RESPONSE_FORMAT["json_schema"]["strict"] is True
    assert schema == ItemContent.model_json_schema()
    assert set(schema["required"]) == set(schema["properties"]) == set(ItemContent.model_fields)
    assert schema["additionalProperties"] is False
    assert {name: p["type"] for name, p in schema["properties"].items()} == {
        "headline": "string",
        "description": "string",
        "highlights": "array",
        "seo_description": "string",
    }
