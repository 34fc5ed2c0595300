"""What the README names exists: every `content-pipeline` command with its options and choices, every `make`
target, every setting (and every setting is in its table), every deployment; and the two commands are given."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml
from prefect import Flow

from cli.main import parsers
from flows import pipeline
from flows.resolve import EdgeSettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def shell_lines(text: str) -> list[str]:
    """The lines of the text's ```bash blocks, continuations joined and comments dropped."""
    joined = "\n".join(body for lang, body in FENCE.findall(text) if lang == "bash").replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in joined.splitlines()]


def inline_code(text: str) -> list[str]:
    """The text's `code spans` outside fenced blocks, each on one line, markdown's `\\|` as `|`."""
    prose = FENCE.sub("", text)
    return [" ".join(span.replace("\\|", "|").split()) for span in re.findall(r"`([^`]+)`", prose)]


def commands(text: str) -> list[str]:
    """Each `content-pipeline ...` command the text gives, from the program name on."""
    code = shell_lines(text) + inline_code(text)
    return [line for line in code if line.startswith("content-pipeline ")]


def make_targets(text: str) -> set[str]:
    return {t for line in shell_lines(text) + inline_code(text) for t in re.findall(r"(?:^|\s)make ([\w-]+)", line)}


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))


def section(text: str, title: str) -> str:
    """The text of the `## title` section."""
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def setting_rows(text: str) -> set[str]:
    """The first column of the settings table (the section `## Settings`)."""
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section(text, "Settings"), re.M))


def flow_names() -> dict[str, str]:
    """Each flow of flows/pipeline.py: its function's name -> the flow's name."""
    return {name: f.name for name, f in vars(pipeline).items() if isinstance(f, Flow)}


def deployments() -> set[str]:
    """`flow/deployment` of every deployment prefect.yaml declares."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = flow_names()
    return {f"{names[d['entrypoint'].split(':')[1]]}/{d['name']}" for d in spec["deployments"]}


def deployments_named(text: str) -> set[str]:
    """Each `flow/deployment` the text names: a flow's name, a slash and a word, not part of a path."""
    flows = "|".join(sorted(map(re.escape, set(flow_names().values())), key=len, reverse=True))
    return {m.group(0) for m in re.finditer(rf"(?<![\w/.-])(?:{flows})/[a-z0-9][a-z0-9-]*(?![\w/.-])", text)}


def placeholder(word: str) -> bool:
    """A value the reader fills in (N, ID, URL, SLUG, `...`, '<segment>: line N'), not a literal to check."""
    return word == "..." or word.isupper() or "<" in word or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", word)


def wrong_in(command: str) -> list[str]:
    """What in one README command the CLI does not have: the subcommand, an option, or a choice offered."""
    words = shlex.split(command.replace("[", " ").replace("]", " "))[1:]
    commands = parsers()
    if " ".join(words[:2]) in commands:  # `publish halt`, `quarantine release`
        words = [" ".join(words[:2]), *words[2:]]
    if not words or words[0] not in commands:
        return [f"no command {words[0] if words else ''!r}"]
    cmd = commands[words[0]]
    options = {o: a for a in cmd._actions for o in a.option_strings}
    positional = [a for a in cmd._actions if not a.option_strings]
    wrong: list[str] = []
    value_of: argparse.Action | None = None  # the option whose value comes next
    skip = False  # the word after an option the CLI lacks: its value, perhaps
    for word in words[1:]:
        alternatives = [w for w in word.split("|") if w]
        if not alternatives:
            continue
        if value_of is not None:  # the option's value: a literal must be one of its choices
            action, value_of = value_of, None
            if action.choices:
                chosen = [w for w in alternatives if not placeholder(w)]
                wrong += [f"{action.option_strings[0]} {w}" for w in chosen if w not in action.choices]
            continue
        if alternatives[0].startswith("-"):
            for option in alternatives:
                action = options.get(option)
                skip = action is None
                if action is None:
                    wrong.append(option)
                elif action.nargs != 0:
                    value_of = action
            continue
        if skip:
            skip = False
            continue
        literals = [w for w in alternatives if not placeholder(w)]
        choices = {c for a in positional if a.choices for c in a.choices}
        if not positional:
            wrong += literals or alternatives
        elif choices:
            wrong += [w for w in literals if w not in choices]
    return [f"{words[0]}: {w}" for w in wrong]


def test_every_setting_is_in_the_readme_table_and_every_row_is_a_setting() -> None:
    fields = {name.upper() for name in EdgeSettings.model_fields}
    rows = setting_rows(README)
    assert len(rows) > 40  # the table was found
    assert sorted(fields - rows) == [], "settings the README's table leaves out"
    assert sorted(rows - fields) == [], "rows of the README's table that are no setting"


def test_every_command_the_readme_gives_is_one_the_cli_has_with_those_options() -> None:
    given = commands(README)
    named = {" ".join(c.split()[1:3]) if " ".join(c.split()[1:3]) in parsers() else c.split()[1] for c in given}
    assert len(given) > 100 and named >= set(parsers())
    assert {c: wrong for c in given if (wrong := wrong_in(c))} == {}


def test_every_make_target_the_readme_names_is_in_the_makefile() -> None:
    named = make_targets(README)
    assert {"run", "test", "up", "down"} <= named
    assert sorted(named - makefile_targets()) == []


def test_every_deployment_the_readme_names_is_in_prefect_yaml() -> None:
    named = deployments_named(README)
    assert {"go-live/ad-hoc", "health/checks-hourly", "publish/morning"} <= named
    assert sorted(named - deployments()) == []


def test_the_two_commands_are_given() -> None:
    assert {"run", "test"} <= make_targets(section(README, "The two commands")) & makefile_targets()


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("`content-pipeline go-live --scope promo`", None),
        ("`content-pipeline go-lve`", "no command 'go-lve'"),
        ("`content-pipeline go-live --scop promo`", "go-live: --scop"),
        ("`content-pipeline go-live --scope promos`", "go-live: --scope promos"),
        ("`content-pipeline report kpi|costs --period daily`", "report: costs"),
        ("`content-pipeline status --json extra`", "status: extra"),
        ("```bash\ncontent-pipeline view successes \\\n    --json   # a comment\n```\n", "view: --json"),
    ],
)
def test_a_command_the_cli_does_not_have_is_caught(text: str, wrong: str | None) -> None:
    [command] = commands(text)
    assert wrong_in(command) == ([] if wrong is None else [wrong])


def test_a_target_deployment_or_setting_that_does_not_exist_is_caught() -> None:
    text = "run `make deploy`, then `go-live/nightly` or go-live/ad-hoc (not scripts/go-live/x)\n\n## Settings\n\n"
    text += "| `NOPE` | `1` | no such setting |\n"
    assert make_targets(text) == {"deploy"} and "deploy" not in makefile_targets()
    assert deployments_named(text) == {"go-live/nightly", "go-live/ad-hoc"}
    assert deployments_named(text) - deployments() == {"go-live/nightly"}
    assert setting_rows(text) == {"NOPE"} and "nope" not in EdgeSettings.model_fields
