"""What the attempt log says: per target and slug, the post live there (its id, link and content hash),
intents left without an outcome, failures, take-downs; damaged lines are named and kept aside."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from content_pipeline.ledger.checksum import check
from content_pipeline.ledger.writer import writer_gone
from content_pipeline.publish.log import SUCCESS
from content_pipeline.store import Store, layout


@dataclass
class PostState:
    """One slug on one target, as the log tells it."""

    live_hash: str | None = None  # the content hash live there now (None: not published, or taken down)
    post_id: str | None = None  # the target's id for the post, once any call returned one
    remote_slug: str | None = None  # the slug the target gave the post (WordPress may change a reserved one)
    link: str | None = None
    taken_down: str | None = None  # "draft" or "trash" after a quarantine's take-down
    last_failure: dict[str, Any] | None = None  # the newest failed outcome not followed by a success
    slot: str | None = None  # the posting plan's slot the live post is scheduled at (UTC ISO), None: sent as is
    went_live: str | None = None  # what the missed-schedule watchdog found once the slot had passed
    payload: dict[str, Any] | None = None  # what went out live (the intent's payload), for the near-copy check


@dataclass
class History:
    """Every line of the attempt log, in time order, and what follows from them."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    posts: dict[tuple[str, str], PostState] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)  # intents no outcome settled (a crash)
    damaged: list[str] = field(default_factory=list)  # `<object>: line N: what`, each kept in quarantine/

    def state(self, target: str, slug: str) -> PostState:
        return self.posts.get((target, slug), PostState())

    def scheduled(self, target: str) -> dict[str, str]:
        """The slots (UTC ISO) taken by a post live or scheduled on `target`, each with its slug."""
        return {
            state.slot: slug
            for (where, slug), state in self.posts.items()
            if where == target and state.slot is not None and state.live_hash is not None
        }

    def outcomes(self, since: datetime | None = None, end: datetime | None = None) -> list[dict[str, Any]]:
        """The outcome lines at or after `since` and at or before `end`."""
        return [
            e
            for e in self.lines
            if e["kind"] == "outcome" and (since is None or _at(e) >= since) and (end is None or _at(e) <= end)
        ]


def _at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]))


def _parse(store: Store, key: str, data: bytes, found: History, keep: bool) -> None:
    pieces = data.split(b"\n")
    if pieces[-1] and not writer_gone(key):
        pieces[-1] = b""  # a line its live writer is still writing: not damage, and not read yet
    for number, raw in enumerate(pieces):
        if not raw:
            continue
        problem = check(raw)
        entry: Any = None
        if problem is None:
            try:
                entry = json.loads(raw)
                _at(entry)
            except (ValueError, KeyError, TypeError):
                problem = "not a log line"
        if problem is not None or not isinstance(entry, dict) or "kind" not in entry:
            found.damaged.append(f"{key}: line {number + 1}: {problem or 'not a log line'}")
            if keep and not store.read_only:
                store.put_if_absent(layout.damaged_record(key, number), raw)
            continue
        found.lines.append(entry)


def _settle(found: History) -> None:
    open_intents: dict[str, dict[str, Any]] = {}
    payloads: dict[str, dict[str, Any]] = {}  # the newest intent's payload per idempotency key
    for entry in found.lines:
        kind, target, slug = entry["kind"], entry.get("target", ""), entry.get("slug", "")
        state = found.posts.setdefault((target, slug), PostState())
        if kind == "intent":
            open_intents[entry["key"]] = entry
            payloads[entry["key"]] = entry.get("payload") or {}
        elif kind == "outcome":
            open_intents.pop(entry.get("key", ""), None)
            state.post_id = entry.get("post_id") or state.post_id
            state.remote_slug = entry.get("remote_slug") or state.remote_slug
            state.link = entry.get("link") or state.link
            if entry.get("live") and entry.get("result") in SUCCESS:
                state.live_hash, state.taken_down, state.last_failure = entry["content_hash"], None, None
                state.went_live = state.went_live if entry.get("slot") == state.slot else None
                state.slot, state.payload = entry.get("slot"), payloads.get(entry.get("key", ""), state.payload)
            elif entry.get("live") and entry.get("result") == "failed":
                state.last_failure = entry
        elif kind == "takedown" and entry.get("result") in ("draft", "trash"):
            state.live_hash, state.taken_down, state.slot, state.went_live = None, entry["result"], None, None
        elif kind == "schedule" and entry.get("slot") == state.slot:
            state.went_live = entry.get("result")
    found.pending = list(open_intents.values())


def read_history(store: Store, keep_damaged: bool = True) -> History:
    """The whole attempt log, every writer's part, in time order; damaged lines are named and (with
    `keep_damaged`, and a store that may be written) a copy of each kept in quarantine/."""
    found = History()
    for info in store.list(layout.PUBLISH_ATTEMPTS):
        _parse(store, info.key, store.get(info.key) or b"", found, keep_damaged)
    found.lines.sort(key=lambda e: (_at(e), e["kind"] != "intent"))
    _settle(found)
    return found
