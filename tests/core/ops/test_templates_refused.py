"""`templates --add` refuses, with one line and before anything is stored, a template that cannot work: no
`{item}` placeholder, a placeholder nothing fills, or a field the catalogue does not have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from content_pipeline.generation.templates import DEFAULT, PromptTemplate, stored_templates
from content_pipeline.store import open_store
from tests.support.cli_helpers import base_env
from tests.support.cli_helpers import run as cli

GOOD = {"id": "short", "version": "1", "system": "You write short copy.", "user": "Item:\n{item}", "fields": ["title"]}
REFUSED = [
    ({"user": "Write about the product."}, "user: no {item} placeholder: the model would never see the item"),
    ({"user": "Write about {title}: {item}"}, "user: {title} is never filled in: only {item} is"),
    ({"system": "You write {brand} copy."}, "system: {brand} is never filled in: only {item} is"),
    ({"fields": ["title", "colour"]}, "fields: 'colour': not a catalogue field (the catalogue has slug, title,"),
    ({"fields": []}, "fields: name each catalogue field once, at least one"),
]


def test_the_default_template_and_a_good_one_pass() -> None:
    assert PromptTemplate.model_validate(DEFAULT.model_dump()) == DEFAULT
    assert PromptTemplate(**GOOD).fields == ("title",)
    # braces that are not a placeholder (a JSON example) are the template's own text
    assert PromptTemplate(**{**GOOD, "system": 'Answer as {"headline": "..."}.'}).system.startswith("Answer")


@pytest.mark.parametrize(("change", "line"), REFUSED)
def test_a_template_that_cannot_work_is_refused(change: dict[str, object], line: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PromptTemplate(**{**GOOD, **change})
    assert line.split(": ", 1)[1] in str(caught.value)


@pytest.mark.slow
def test_templates_add_refuses_with_one_line_and_stores_nothing(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "STORE_URL": str(tmp_path / "store"), "CONTENT_PIPELINE_ENV_FILE": ""}
    for number, (change, line) in enumerate(REFUSED):
        path = tmp_path / f"t{number}.json"
        path.write_text(json.dumps({**GOOD, **change}))
        done = cli(env, "templates", "--add", str(path))
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr
        assert done.stderr.startswith(f"error: templates --add {path}: {line}"), done.stderr
        assert done.stderr.strip().endswith(": nothing stored")
    assert stored_templates(open_store(env["STORE_URL"])) == [DEFAULT.key]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    added = cli(env, "templates", "--add", str(good))
    assert added.returncode == 0 and "templates: short:1 stored and active" in added.stdout, added.stderr
