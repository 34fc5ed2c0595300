"""The catalogue's commands take the same parameters, with the same bounds, at both front doors: the flow's
form (the parameter schema Prefect sends a server, descriptions included) and the command line."""

from __future__ import annotations

import argparse
import math
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema

from cli.arguments import FLAGS, command_parser
from cli.main import main, parsers
from content_pipeline.commands.catalogue import CATALOGUE, COMMANDS, Command
from flows.pipeline import FLOWS

WITH_FLOWS = sorted(c.name for c in COMMANDS if c.flow)


def flow_of(name: str) -> Any:
    """The flow of the catalogue command `name` (its flow's name: `engagement pull` is engagement-pull)."""
    return FLOWS[CATALOGUE[name].flow or ""]


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The parser's arguments by destination, the front door's own (--json, --prefect, --direct) left out."""
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "json", "prefect", "direct")}


def out_of_bounds(schema: dict[str, Any]) -> list[Any]:
    """Values just past each bound the schema declares."""
    values: list[Any] = []
    if "maximum" in schema:
        values.append(schema["maximum"] * 2 + 1)
    if "minimum" in schema:
        values.append(schema["minimum"] - 1)
    if "exclusiveMinimum" in schema:
        values.append(schema["exclusiveMinimum"])
    return values


def test_every_flow_is_a_catalogue_command_and_every_command_with_a_flow_has_it() -> None:
    assert sorted(FLOWS) == sorted(CATALOGUE[n].flow for n in WITH_FLOWS) and len(FLOWS) == 21
    assert all(FLOWS[CATALOGUE[n].flow or ""].name == n.replace(" ", "-") for n in WITH_FLOWS)


@pytest.mark.parametrize("name", WITH_FLOWS)
def test_the_flows_form_is_the_commands_model(name: str) -> None:
    """Names, defaults, bounds, choices and descriptions of the form are those of the parameter model."""
    form = parameter_schema(flow_of(name)).model_dump()["properties"]
    model = CATALOGUE[name].params.model_json_schema()["properties"]
    assert list(form) == list(model)
    for param, prop in form.items():
        expected = {k: v for k, v in model[param].items() if k != "title"}
        got = {k: v for k, v in prop.items() if k not in ("title", "position")}
        assert got == expected and prop["description"], param


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_the_command_line_takes_the_models_parameters_with_their_choices(command: Command) -> None:
    parser = command_parser(command, "content-pipeline")
    found = options(parser)
    assert set(found) == set(command.params.model_fields)
    for name, field in command.params.model_fields.items():
        action = found[name]
        assert action.help.replace("%%", "%") == field.description, name
        choices = command.params.model_json_schema()["properties"][name].get("enum")
        assert (list(action.choices) if action.choices else None) == choices, name
        if name not in command.params.POSITIONAL:
            assert FLAGS.get(name, "--" + name.replace("_", "-")) in action.option_strings


@pytest.mark.parametrize("name", WITH_FLOWS)
def test_a_value_out_of_bounds_is_refused_by_both_doors(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each bound a field declares: the flow's validation refuses the value, and the command line refuses it
    with one line naming the flag, exit 2, before anything runs."""
    command, flow = CATALOGUE[name], flow_of(name)
    schema = command.params.model_json_schema()["properties"]
    checked = 0
    for param, prop in schema.items():
        for value in out_of_bounds(prop):
            with pytest.raises(Exception, match=param):
                flow.validate_parameters({param: value})
            flag = FLAGS.get(param, "--" + param.replace("_", "-"))
            assert main([*name.split(), flag, str(value)]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"error: {name} {flag} "), err
            shown = err[0].removeprefix(f"error: {name} {flag} ").split()[0]
            assert float(shown.removesuffix(":")) == value, err
            checked += 1
    bounded = [p for p in schema.values() if out_of_bounds(p)]
    assert checked == sum(len(out_of_bounds(p)) for p in bounded)


def test_the_run_parameters_show_their_bounds_and_choices() -> None:
    props = parameter_schema(FLOWS["go-live"]).model_dump()["properties"]
    assert (props["limit"]["minimum"], props["limit"]["maximum"]) == (1, 10_000_000)
    assert props["budget_usd"]["exclusiveMinimum"] == 0 and props["budget_usd"]["maximum"] == 1_000_000
    assert props["scope"]["enum"] == ["all", "promo", "changed"]
    assert props["run_id"]["description"].startswith("Run id")
    assert props["mode"]["enum"] == ["default", "sync", "batch"] and props["mode"]["default"] == "default"
    assert math.isclose(
        parameter_schema(FLOWS["replay-failed"]).model_dump()["properties"]["since_hours"]["maximum"], 720
    )


@pytest.mark.parametrize("name", WITH_FLOWS)
def test_no_parameter_that_is_really_a_choice_is_free_text(name: str) -> None:
    """An optional string shows in the UI's form as a "str | None" pair of tabs: only free text may be one."""
    props = parameter_schema(flow_of(name)).model_dump()["properties"]
    free_text = {
        "run_id",
        "target",
        "to",
        "source",
        "snapshot",
        "from_backup",
        "sources",
        "as_of",
    }  # ids, names, URLs, a date
    optional = {p for p, prop in props.items() if any(t.get("type") == "null" for t in prop.get("anyOf", []))}
    assert optional <= free_text, optional - free_text


def test_every_command_has_a_parser_and_a_help_line() -> None:
    found = parsers()
    assert set(found) == {*CATALOGUE, "fake-llm"}
    assert all(c.help and c.doc for c in COMMANDS)
