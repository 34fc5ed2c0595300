"""How a command ended, for any front door: ok, its one-line summary, its lines, records and artifacts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

if TYPE_CHECKING:
    from content_pipeline.run.report import RunReport

Level = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Line:
    """One line of output: the terminal prints it (to stderr when `err`), a flow run logs it at `level`."""

    text: str
    level: Level = "info"
    err: bool = False


@dataclass(frozen=True)
class Artifact:
    """A result a flow run keeps (markdown, or a table of rows) under `key`; the terminal shows the lines."""

    key: str
    markdown: str | None = None
    table: list[dict[str, Any]] | None = None
    description: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A command's outcome. `summary`: a flow run's state message; `exit_code`: the terminal's (0 when ok, 1
    when not, unless the command says otherwise); `records`: what `--json` prints, one object per line;
    `report`: a whole run's report (the terminal prints it first; a flow run already holds it); `stream`:
    bytes the terminal writes as they are read (a view)."""

    ok: bool
    summary: str
    lines: tuple[Line, ...] = ()
    records: tuple[dict[str, Any], ...] | None = None
    artifacts: tuple[Artifact, ...] = ()
    report: RunReport | None = None
    exit_code: int | None = field(default=None)
    stream: Callable[[BinaryIO], object] | None = None

    @property
    def code(self) -> int:
        return self.exit_code if self.exit_code is not None else (0 if self.ok else 1)


def said(ok: bool, summary: str, *texts: str, prefix: str = "") -> Outcome:
    """An outcome whose lines are `texts` (each after `prefix`), summarised by `summary`."""
    return Outcome(ok, summary, tuple(Line(f"{prefix}{text}") for text in texts))
