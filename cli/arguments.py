"""A command's argparse parser, made from its parameter model: flags, positionals, choices and help as
the model declares them (its bounds are checked by the model itself, as a flow's form checks them)."""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any, Literal, get_args, get_origin

from pydantic.fields import FieldInfo

from content_pipeline.commands.catalogue import Command
from content_pipeline.commands.params import JSON_FLAG

FLAGS = {"source": "--from", "snapshot": "--from"}  # a field whose flag is not its name (backup, restore)


def _choices(annotation: Any) -> list[Any] | None:
    """The choices of a Literal (or Literal | None) annotation."""
    for arg in (annotation, *get_args(annotation)):
        if get_origin(arg) is Literal:
            return list(get_args(arg))
    return None


def _scalar(annotation: Any) -> Any:
    """The scalar type of `annotation` (int for `int | None`)."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _add(parser: argparse.ArgumentParser, name: str, field: FieldInfo, positional: bool) -> None:
    help_text = (field.description or "").replace("%", "%%")
    kind = _scalar(field.annotation)
    options: dict[str, Any] = {"help": help_text, "default": argparse.SUPPRESS}
    choices = _choices(field.annotation)
    if kind is bool:
        options["action"] = "store_true"
    elif choices is not None:
        options["choices"] = choices
    else:
        options["type"] = kind if kind in (int, float) else str
        options["metavar"] = name.upper().replace("_", "-") if positional else name.split("_")[-1].upper()
    if positional:
        parser.add_argument(name, nargs=None if field.is_required() else "?", **options)
    else:
        parser.add_argument(FLAGS.get(name, "--" + name.replace("_", "-")), dest=name, **options)


def command_parser(command: Command, prog: str) -> argparse.ArgumentParser:
    """The parser of `command`'s own arguments (after its name)."""
    parser = argparse.ArgumentParser(prog=f"{prog} {command.name}", description=command.doc)
    model = command.params
    for name, field in model.model_fields.items():
        _add(parser, name, field, name in model.POSITIONAL)
    if command.json:
        parser.add_argument(f"--{JSON_FLAG}", action="store_true", help="print one JSON object per record")
    if command.routed:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--prefect",
            action="store_true",
            help="run it as a Prefect flow even when no Prefect API is configured (a temporary server) (RUN_MODE)",
        )
        mode.add_argument("--direct", action="store_true", help="run the core directly even when one is (RUN_MODE)")
    return parser


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters given on the command line (the front door's own flags left out)."""
    return {k: v for k, v in vars(args).items() if k not in (JSON_FLAG, "prefect", "direct")}
