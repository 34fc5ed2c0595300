"""What an engagement source is: a name and a pull of the published posts' figures per day; its one error, and
one API call with its retries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol

import httpx2

from content_pipeline.engagement.days import PostDay
from content_pipeline.errors import PipelineError
from content_pipeline.publish.retry import Retried, with_retries
from content_pipeline.publish.targets import TargetUnavailable, send


class EngagementSourceError(PipelineError):
    """A source that refused or could not answer a pull: one line naming the source and why (never a key)."""


class Source(Protocol):
    name: str

    def pull(self, paths: Mapping[str, str], first: date, last: date) -> list[PostDay]:
        """The figures of the pages in `paths` (path -> the post's slug) for each day from `first` to `last`."""
        ...


def call(
    client: httpx2.Client, where: str, retries: int, method: str, url: str, shown: str, **kwargs: Any
) -> httpx2.Response:
    """One call to a source's API: 429s, 5xxs and dropped connections backed off and retried (Retry-After
    honoured) up to `retries` times, then one line naming the source (`where`) and the call, never a key."""
    try:
        return with_retries(lambda: send(client, where, method, url, shown, **kwargs), retries, Retried())
    except TargetUnavailable as exc:
        raise EngagementSourceError(f"{exc} (after {retries} retries)") from None
