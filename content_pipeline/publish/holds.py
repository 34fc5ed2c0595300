"""Holds: an item that must come down is turned back to draft (or trashed) on the target, the
take-down recorded, and the item kept from being published again until it is released."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from content_pipeline.errors import BadInputError
from content_pipeline.intake.catalogue import SLUG
from content_pipeline.publish.history import History
from content_pipeline.publish.log import AttemptLog
from content_pipeline.publish.targets import Target
from content_pipeline.store import Store, layout


def _check(slug: str) -> str:
    if not SLUG.match(slug):
        raise BadInputError(f"quarantine: {slug!r} is not a slug (1-128 characters of [a-z0-9-])")
    return slug


def hold_entry(store: Store, slug: str) -> dict[str, Any] | None:
    """Why `slug` is quarantined, or None; an entry that does not read back still quarantines (named)."""
    raw = store.get(layout.publish_quarantine(slug))
    if raw is None:
        return None
    try:
        entry = json.loads(raw)
        return entry if isinstance(entry, dict) and "reason" in entry else {"reason": "unreadable", "damaged": True}
    except ValueError:
        return {"reason": f"{layout.publish_quarantine(slug)} is damaged: kept quarantined", "damaged": True}


def holds(store: Store) -> dict[str, dict[str, Any]]:
    """Every quarantined slug and its entry."""
    found = {}
    for info in store.list(layout.PUBLISH_QUARANTINE):
        slug = info.key[len(layout.PUBLISH_QUARANTINE) :].removesuffix(".json")
        entry = hold_entry(store, slug)
        if entry is not None:
            found[slug] = entry
    return found


def hold(
    store: Store, log: AttemptLog, target: Target, history: History, slug: str, reason: str, by: str, trash: bool
) -> str:
    """Hold `slug` from publishing (recorded first, so it holds even when the take-down fails), then take its
    post down on `target`; the line says what was done."""
    _check(slug)
    if not reason.strip():
        raise BadInputError("quarantine: give a --reason")
    at = datetime.now(UTC).isoformat(timespec="seconds")
    entry = {"slug": slug, "reason": reason.strip(), "by": by, "at": at, "trash": trash}
    store.put(layout.publish_quarantine(slug), json.dumps(entry).encode())
    state = history.state(target.name, slug)
    found = target.find(slug, state.post_id)
    if found is None:
        log.write("takedown", target=target.name, slug=slug, result="none", reason=reason, by=by)
        return f"quarantine: {slug} held from publishing; no post on {target.name} to take down"
    done = target.take_down(found, slug, trash)
    result = "trash" if trash else "draft"
    log.write(
        "takedown",
        target=target.name,
        slug=slug,
        result=result,
        post_id=found.post_id,
        code=done.code,
        reason=reason,
        by=by,
    )
    return f"quarantine: {slug} held from publishing; post {found.post_id} on {target.name} turned to {result}"


def release(store: Store, log: AttemptLog, slug: str, by: str) -> str:
    """Let `slug` be published again (the next publish run puts its post back)."""
    _check(slug)
    if hold_entry(store, slug) is None:
        raise BadInputError(f"quarantine release: {slug} is not quarantined")
    store.delete(layout.publish_quarantine(slug))
    log.write("release", slug=slug, by=by)
    return f"quarantine: {slug} released; the next publish run may publish it again"
