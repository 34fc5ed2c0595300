"""A flow's parameter descriptions where Prefect reads them: its docstring's Args section, made from each
parameter's `Field(description=...)` (the parameter schema a deployment sends its server takes them from
the docstring only, and the UI's form shows them)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints

from pydantic.fields import FieldInfo

F = TypeVar("F", bound=Callable[..., Any])


def field_description(hint: Any) -> str | None:
    """The description of an `Annotated[..., Field(description=...)]` hint, or None."""
    return next(
        (m.description for m in getattr(hint, "__metadata__", ()) if isinstance(m, FieldInfo) and m.description),
        None,
    )


def described(fn: F) -> F:
    """`fn` with an Args section appended to its docstring, one line per parameter that has a description
    (apply it below `@flow`, so the flow wraps the described function)."""
    hints = get_type_hints(fn, include_extras=True)
    lines = [
        f"    {name}: {text}"
        for name in inspect.signature(fn).parameters
        if (text := field_description(hints.get(name))) is not None
    ]
    if lines:
        fn.__doc__ = f"{inspect.cleandoc(fn.__doc__ or '')}\n\nArgs:\n" + "\n".join(lines) + "\n"
    return fn
