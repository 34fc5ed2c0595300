"""What an engagement source is: a name and a pull of the published posts' figures per day; and its one error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Protocol

from content_pipeline.engagement.days import PostDay
from content_pipeline.errors import PipelineError


class EngagementSourceError(PipelineError):
    """A source that refused or could not answer a pull: one line naming the source and why (never a key)."""


class Source(Protocol):
    name: str

    def pull(self, paths: Mapping[str, str], first: date, last: date) -> list[PostDay]:
        """The figures of the pages in `paths` (path -> the post's slug) for each day from `first` to `last`."""
        ...
