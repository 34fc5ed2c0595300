"""The `content-pipeline` command: each catalogue command with its parameters as flags, run in this
process, or as its Prefect flow when a Prefect API is configured (RUN_MODE); and fake-llm."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from pydantic import ValidationError

from cli.arguments import FLAGS, command_parser, given
from cli.fake_llm import HELP as FAKE_LLM_HELP
from cli.fake_llm import fake_llm, fake_llm_arguments
from cli.prefect_api import configured_api_url
from cli.render import show
from content_pipeline.commands.catalogue import CATALOGUE, COMMANDS, Command
from content_pipeline.commands.outcome import Outcome
from content_pipeline.commands.params import Params
from content_pipeline.errors import BadInputError, PipelineError
from content_pipeline.store import store_for
from flows.resolve import EdgeSettings, resolved_settings

PROG = "content-pipeline"
EXIT_USAGE = 2


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, list[str]] = {}
    for command in COMMANDS:
        if " " not in command.name:
            sub.add_parser(command.name, help=command.help, add_help=False)
        else:
            groups.setdefault(command.name.split()[0], []).append(command.name.split(" ", 1)[1])
    for word, rest in groups.items():
        if word not in CATALOGUE:  # a word that only leads its commands: `engagement pull`, ...
            sub.add_parser(word, help=f"{word} {' | '.join(rest)}", add_help=False)
    sub.add_parser("fake-llm", help=FAKE_LLM_HELP, add_help=False)
    return parser


def _fake_llm_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{PROG} fake-llm", description=FAKE_LLM_HELP)
    fake_llm_arguments(parser)
    return parser


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its name (`publish halt` among them), fake-llm's included."""
    return {c.name: command_parser(c, PROG) for c in COMMANDS} | {"fake-llm": _fake_llm_parser()}


def _find(argv: list[str]) -> tuple[Command | None, list[str]]:
    """The command `argv` names (its longest name: `publish halt` before `publish`) and its arguments."""
    for words in (2, 1):
        name = " ".join(argv[:words])
        if len(argv) >= words and name in CATALOGUE:
            return CATALOGUE[name], argv[words:]
    return None, argv


def _params(command: Command, args: argparse.Namespace) -> Params:
    """The command's parameters as given, checked by its model: a bad one is one line naming its flag."""
    try:
        return command.params(**given(args))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = field if field in command.params.POSITIONAL else FLAGS.get(field, "--" + field.replace("_", "-"))
        shown = f" {_shown(err.get('input'))}" if field and not isinstance(err.get("input"), dict) else ""
        where = f" {flag}{shown}: " if field else ": "
        raise BadInputError(f"{command.name}{where}{str(err['msg']).removeprefix('Value error, ')}") from None


def _shown(value: object) -> str:
    """A refused value as it was most likely typed: 0 rather than 0.0, 1e+30 as it is."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _mode(args: argparse.Namespace) -> str | None:
    return "prefect" if getattr(args, "prefect", False) else ("direct" if getattr(args, "direct", False) else None)


def run(command: Command, args: argparse.Namespace) -> int:
    """Resolve the settings (environment, blocks, flags), then run `command` here or as its flow."""
    params = _params(command, args)
    api = configured_api_url()
    settings = resolved_settings(api, run_mode=_mode(args), **params.overrides(given_only=True))
    if command.run_id:
        settings = settings.with_run_id()
    if command.routed:
        store_for(settings)  # a bad STORE_URL, bucket or endpoint: one line now, before Prefect starts
        if settings.run_mode == "prefect" or (settings.run_mode == "auto" and api is not None):
            from cli.flow_run import via_flow

            return via_flow(command, params.filled(settings), settings, temporary=api is None)
    return show(here(command, params, settings, api), bool(getattr(args, "json", False)))


def here(command: Command, params: Params, settings: EdgeSettings, api: str | None) -> Outcome:
    """`command` run in this process: the plain reporter, targets from the settings or blocks, and health's
    Prefect probes when an API is configured."""
    from content_pipeline.commands.context import Context
    from content_pipeline.run.reporter import PlainReporter, log_to_stderr
    from flows.engagement import EdgeSources
    from flows.prefect_probe import prefect_probes
    from flows.publishing import EdgePublishing

    if command.routed:
        log_to_stderr(logging.getLevelName(settings.log_level))
    publishing = EdgePublishing(settings, api, in_flow=False)
    sources = EdgeSources(settings, api)
    context = Context(command.name, settings, PlainReporter(), publishing, prefect_probes(api), sources)
    return command.fn(context, params)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command, rest = _find(argv)
    if command is None:
        if argv[:1] == ["fake-llm"]:
            fake = _fake_llm_parser().parse_args(rest[1:])
            return _guarded("fake-llm", lambda: fake_llm(fake))
        _top_parser().parse_args(argv)  # prints the commands, or names the unknown one; exits 2
        led = sorted(c.name for c in COMMANDS if c.name.split()[0] == argv[0])
        print(f"{PROG} {argv[0]}: name one of: {', '.join(led)}", file=sys.stderr)
        return EXIT_USAGE
    args = command_parser(command, PROG).parse_args(rest)
    return _guarded(command.name, lambda: run(command, args))


def _guarded(name: str, body: Callable[[], int]) -> int:
    """Run `body`: an expected failure is one line and its exit code; an interrupt exits 130."""
    try:
        return body()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # the run's claims and lease were released on the way out; its ledger is whole
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
