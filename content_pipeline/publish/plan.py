"""The daily plan: consolidated successes not yet live on a target with their current content, oldest first,
none quarantined, at most PUBLISH_MAX_POSTS; a replay takes only the posts whose last attempt failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from content_pipeline.generation.content import ItemContent
from content_pipeline.intake.catalogue import Item
from content_pipeline.publish.history import History, PostState
from content_pipeline.publish.post import Post, idempotency_key, post_for
from content_pipeline.store import Store
from content_pipeline.views.snapshot import read_contents


@dataclass(frozen=True)
class Candidate:
    """One post to send, its idempotency key, and what the log knows of it on the target."""

    post: Post
    key: str
    state: PostState

    @property
    def update(self) -> bool:
        return self.state.post_id is not None


@dataclass(frozen=True)
class Plan:
    """The posts to send, and how many were left out (quarantined, or over the run's limit)."""

    candidates: list[Candidate]
    quarantined: int
    over_limit: int
    published: int  # live already with their current content


def plan(
    store: Store,
    target: str,
    items: dict[str, Item],
    history: History,
    quarantined: set[str],
    max_posts: int,
    failed_since: datetime | None = None,
) -> Plan:
    """The plan for one publish run to `target`."""
    rows = read_contents(store).sort(["finished_at", "slug"])
    wanted: list[Candidate] = []
    held = live = 0
    for slug, content in zip(rows["slug"], rows["content"], strict=True):
        post = post_for(slug, ItemContent.model_validate(content), items.get(slug))
        state = history.state(target, slug)
        if state.live_hash == post.content_hash:
            live += 1
            continue
        if failed_since is not None and (
            state.last_failure is None or datetime.fromisoformat(state.last_failure["at"]) < failed_since
        ):
            continue
        if slug in quarantined:
            held += 1
            continue
        wanted.append(Candidate(post, idempotency_key(slug, target, post.content_hash), state))
    return Plan(wanted[:max_posts], held, max(0, len(wanted) - max_posts), live)
