"""Every flow parameter carries its description and bounds into the parameter schema Prefect sends a server
(Prefect reads descriptions from the docstring only): what the UI's form shows under each field."""

from __future__ import annotations

from typing import get_type_hints

import pytest
from prefect import Flow
from prefect.utilities.callables import parameter_schema

from flows import pipeline
from flows.described import field_description

FLOWS = {f.name: f for f in vars(pipeline).values() if isinstance(f, Flow)}


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_every_parameter_has_its_fields_description_in_the_schema(name: str) -> None:
    flow = FLOWS[name]
    props = parameter_schema(flow).model_dump()["properties"]
    hints = get_type_hints(flow.fn, include_extras=True)
    assert set(props) == set(hints) - {"return"}
    for param, prop in props.items():
        assert prop.get("description") == field_description(hints[param]) and prop["description"], param


def test_the_run_parameters_show_their_bounds_and_choices() -> None:
    props = parameter_schema(FLOWS["go-live"]).model_dump()["properties"]
    assert (props["limit"]["minimum"], props["limit"]["maximum"]) == (1, 10_000_000)
    assert props["budget_usd"]["exclusiveMinimum"] == 0 and props["budget_usd"]["maximum"] == 1_000_000
    assert props["scope"]["enum"] == ["all", "promo", "changed"]
    assert props["run_id"]["description"].startswith("Run id")
    assert props["mode"]["enum"] == ["default", "sync", "batch"] and props["mode"]["default"] == "default"


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_no_parameter_that_is_really_a_choice_is_free_text(name: str) -> None:
    """An optional string shows in the UI's form as a "str | None" pair of tabs: only free text may be one."""
    props = parameter_schema(FLOWS[name]).model_dump()["properties"]
    free_text = {"run_id", "target", "to"}  # an id, a block's name, a store's URL
    optional = {p for p, prop in props.items() if any(t.get("type") == "null" for t in prop.get("anyOf", []))}
    assert optional <= free_text, optional - free_text
