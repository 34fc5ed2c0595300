"""What a publish target does (look a post up, create, update, take down) and how its calls fail."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx2

from content_pipeline.errors import PipelineError
from content_pipeline.publish.post import Post


@dataclass(frozen=True)
class RemotePost:
    """A post as the target holds it: its id, link and status, and the response code that told us."""

    post_id: str | None
    link: str | None
    status: str | None
    code: int | None
    notes: tuple[str, ...] = ()  # what the target changed on the way (a fallback category, a tag left off)
    key: str | None = None  # the idempotency key the post is marked with on the target (None: no marker)
    slug: str | None = None  # the slug the target gave it (WordPress changes a reserved or taken one)


class TargetRefused(PipelineError):
    """The target refused our credentials or our rights (401, 403): the run stops at once; retrying will
    not help. The message names the target and the cause."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class TargetUnavailable(PipelineError):
    """A failure worth a retry: 429, a 5xx, a timeout or a dropped connection. `retry_after` is the wait the
    target asked for, in seconds, when it named one."""

    def __init__(self, message: str, code: int | None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code, self.retry_after = code, retry_after


class TargetFailed(PipelineError):
    """Any other answer that is not a success (400, 404 on create, a body that is not JSON): this post
    failed; the run goes on with the next."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class SlugConflict(TargetFailed):
    """The slug is taken on the target by a post the pipeline did not make: that post is left untouched and
    this item is not sent until an operator settles it (README: "Slug conflicts")."""

    def __init__(self, message: str, post_id: str, author: str) -> None:
        super().__init__(message, 409)
        self.post_id, self.author = post_id, author


class Target(Protocol):
    """A place posts go: WordPress (publish/wordpress.py) or a signed webhook (publish/webhook.py)."""

    name: str

    def check(self) -> tuple[str, ...]:
        """Before the first live call: TargetRefused when the target will not take our credentials; else
        what the run should say about the target once (e.g. a WordPress without the marker plugin)."""
        ...

    def find(self, slug: str, post_id: str | None) -> RemotePost | None:
        """The post the pipeline made for `slug` (by its stored id first, then by slug with any status);
        SlugConflict when the slug is held by a post the pipeline did not make."""
        ...

    def create(self, post: Post, key: str, slot: datetime | None = None) -> RemotePost:
        """A new post; with `slot`, scheduled to go live then (WordPress: `future` with `date_gmt`)."""
        ...

    def update(self, found: RemotePost, post: Post, key: str, slot: datetime | None = None) -> RemotePost: ...

    def go_live(self, found: RemotePost, slug: str) -> RemotePost:
        """Publish a scheduled post now (its slot passed and it did not go live on its own)."""
        ...

    def take_down(self, found: RemotePost, slug: str, trash: bool) -> RemotePost:
        """Turn the post back to draft, or trash it."""
        ...

    def close(self) -> None: ...


def _retry_after(response: httpx2.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:  # absent, or an HTTP date: the backoff decides
        return None


def send(
    client: httpx2.Client,
    where: str,
    method: str,
    url: str,
    shown: str = "",
    keep: Collection[int] = (),
    **kwargs: Any,
) -> httpx2.Response:
    """One HTTP call to a target: a timeout, a dropped connection, a 429 or a 5xx (but those in `keep`,
    returned for the caller to read) raise TargetUnavailable (with the Retry-After it asked for); any other
    answer is returned. Messages name the target (`where`) and the call (`method` and `shown`, never a URL
    that may carry a token)."""
    call = f"{method} {shown}" if shown else method
    try:
        response = client.request(method, url, **kwargs)
    except httpx2.TimeoutException:
        raise TargetUnavailable(f"{where}: {call} timed out", None) from None
    except httpx2.TransportError as exc:
        raise TargetUnavailable(f"{where}: {call}: connection failed ({type(exc).__name__})", None) from None
    code = response.status_code
    if (code == 429 or code >= 500) and code not in keep:
        raise TargetUnavailable(f"{where}: {call}: {code}", code, _retry_after(response))
    return response
