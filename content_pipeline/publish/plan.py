"""The daily plan: consolidated successes not yet live on a target with their current content, oldest first,
none quarantined or held by the quality gate, at most PUBLISH_MAX_POSTS; with a posting plan, each new post
takes a free slot of the next 24 hours (an update keeps its post's slot); a replay takes only the posts whose
last attempt failed."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from content_pipeline.generation.content import ItemContent
from content_pipeline.intake.catalogue import Item
from content_pipeline.posting_plan import PostingPlan
from content_pipeline.publish.history import History, PostState
from content_pipeline.publish.post import Post, idempotency_key, post_for
from content_pipeline.publish.quality import PublishedSketches, QualityRules, check, visible_text
from content_pipeline.store import Store
from content_pipeline.views.snapshot import read_contents


@dataclass(frozen=True)
class Candidate:
    """One post to send, its idempotency key, and what the log knows of it on the target."""

    post: Post
    key: str
    state: PostState
    slot: datetime | None = None  # the posting plan's slot it goes live at (None: at once)
    fallback: bool = False  # its content was written by FALLBACK_MODEL (the primary provider was down)

    @property
    def update(self) -> bool:
        return self.state.post_id is not None


@dataclass(frozen=True)
class Plan:
    """The posts to send, and how many were left out (quarantined, held by the quality gate, over the run's
    limit, waiting for a free slot of the posting plan)."""

    candidates: list[Candidate]
    quarantined: int
    over_limit: int
    published: int  # live already with their current content
    held: list[tuple[str, str]] = field(default_factory=list)  # (slug, why) the quality gate keeps back
    waiting: int = 0  # new posts for which the next 24 hours have no free slot
    slots: list[datetime] = field(default_factory=list)  # the posting plan's slots of the next 24 hours


def _published(history: History, target: str) -> PublishedSketches:
    """The posts live on `target` now, as the near-copy check compares them."""
    return PublishedSketches(
        (slug, visible_text(str((state.payload or {}).get("content", ""))))
        for (where, slug), state in history.posts.items()
        if where == target and state.live_hash is not None
    )


def _slotted(wanted: list[Candidate], free: list[datetime]) -> tuple[list[Candidate], int]:
    """Each new post given the next free slot (those left over wait); an update of a post live or scheduled
    keeps its slot (a post taken down goes back up at a new one)."""
    placed, free, waiting = [], list(free), 0
    for cand in wanted:
        if cand.state.live_hash is not None:
            slot = cand.state.slot
            placed.append(replace(cand, slot=datetime.fromisoformat(slot) if slot else None))
        elif free:
            placed.append(replace(cand, slot=free.pop(0)))
        else:
            waiting += 1
    return placed, waiting


def plan(
    store: Store,
    target: str,
    items: dict[str, Item],
    history: History,
    quarantined: set[str],
    max_posts: int,
    failed_since: datetime | None = None,
    *,
    rules: QualityRules | None = None,
    posting: PostingPlan | None = None,
    now: datetime | None = None,
) -> Plan:
    """The plan for one publish run to `target` (`now`: the moment the posting plan's slots count from)."""
    rows = read_contents(store).sort(["finished_at", "slug"])
    published: PublishedSketches | None = None  # built for the first post the gate looks at
    wanted: list[Candidate] = []
    held: list[tuple[str, str]] = []
    quarantine = live = over = 0
    for slug, content, fallback in zip(rows["slug"], rows["content"], rows["fallback"], strict=True):
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
            quarantine += 1
            continue
        if len(wanted) >= max_posts:  # not looked at by this run (nor by its gate): the next run's
            over += 1
            continue
        if rules is not None:
            published = published if published is not None else _published(history, target)
            why = check(post, rules, published)
            if why is not None:
                held.append((slug, why))
                continue
            published.add(slug, visible_text(post.body_html))  # a later post of this run nearly copying it is held
        wanted.append(Candidate(post, idempotency_key(slug, target, post.content_hash), state, fallback=fallback))
    if posting is None:
        return Plan(wanted, quarantine, over, live, held)
    slots = posting.ahead(now or datetime.now(UTC))
    taken = history.scheduled(target)
    placed, waiting = _slotted(wanted, [s for s in slots if s.isoformat() not in taken])
    return Plan(placed, quarantine, over, live, held, waiting, slots)
