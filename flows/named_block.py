"""A block found by its name among some block types: what a publish target or an engagement source names."""

from __future__ import annotations

from typing import Any

from content_pipeline.errors import PipelineError


def named_block(types: tuple[type[Any], ...], name: str, what: str, error: type[PipelineError]) -> Any | None:
    """The first block of `types` called `name`; None when there is none; `error` with one line naming `what`
    when the blocks cannot be read (the server is down or refuses us)."""
    for block_type in types:
        try:
            return block_type.load(name)
        except ValueError:  # no block of this type by that name
            continue
        except Exception as exc:  # whatever the client raised
            raise error(f"{what} {name!r}: the blocks could not be read ({type(exc).__name__})") from None
    return None
