"""The posts the pipeline published, as the attempt log knows them: each one's path, link and post id, so a
source's page or an imported row finds its post; when it first went live, and the category it went out under."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from content_pipeline.publish.history import read_history
from content_pipeline.publish.log import SUCCESS
from content_pipeline.store import Store


@dataclass
class Published:
    """slug by path (`/item-0001/`), by full link and by the target's post id; and every slug published."""

    by_path: dict[str, str] = field(default_factory=dict)
    by_link: dict[str, str] = field(default_factory=dict)
    by_post_id: dict[str, str] = field(default_factory=dict)
    slugs: set[str] = field(default_factory=set)
    first_live: dict[str, datetime] = field(default_factory=dict)  # when a target first confirmed it live
    categories: dict[str, str] = field(default_factory=dict)  # the category its newest post went out under

    def find(self, *, slug: str = "", path: str = "", url: str = "", post_id: str = "") -> str | None:
        """The slug of the post a row names by any one of these (None when it names no post of ours)."""
        if slug:
            return slug if slug in self.slugs else None
        if url:
            return self.by_link.get(url) or self.by_path.get(urlsplit(url).path or "/")
        if path:
            return self.by_path.get(path)
        return self.by_post_id.get(post_id) if post_id else None


def published(store: Store) -> Published:
    """Every post a target ever confirmed (taken down ones included: their past days still count)."""
    found = Published()
    history = read_history(store, keep_damaged=False)
    for entry in history.lines:
        if entry["kind"] == "intent" and (entry.get("payload") or {}).get("categories"):
            found.categories[str(entry.get("slug"))] = str(entry["payload"]["categories"][0])
        elif entry["kind"] != "outcome" or not entry.get("live") or entry.get("result") not in SUCCESS:
            continue
        elif entry.get("slug") not in found.first_live:
            found.first_live[str(entry["slug"])] = datetime.fromisoformat(str(entry["at"]))
    for (_, slug), state in history.posts.items():
        if state.post_id is None and state.link is None:
            continue  # attempted, never confirmed
        found.slugs.add(slug)
        if state.link:
            found.by_link[state.link] = slug
            found.by_path[urlsplit(state.link).path or "/"] = slug
        if state.post_id:
            found.by_post_id[state.post_id] = slug
    return found
