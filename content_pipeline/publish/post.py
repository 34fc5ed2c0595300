"""What goes out for one success: the post (title, HTML body, excerpt, slug, categories, tags), its
content hash, and the idempotency key that makes a publish happen once per slug, target and content."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from typing import Any

from content_pipeline.generation.content import ItemContent
from content_pipeline.intake.catalogue import Item


@dataclass(frozen=True)
class Post:
    """One post as a target receives it."""

    slug: str
    title: str
    body_html: str
    excerpt: str
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "content": self.body_html,
            "excerpt": self.excerpt,
            "categories": list(self.categories),
            "tags": list(self.tags),
        }

    @property
    def content_hash(self) -> str:
        """sha256 of the payload as canonical JSON: a changed item changes it, the same item never does."""
        canonical = json.dumps(self.payload(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def body_html(content: ItemContent) -> str:
    """The description as a paragraph and the highlights as a list, every text escaped."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in content.highlights)
    return f"<p>{html.escape(content.description)}</p>\n<ul>{items}</ul>"


def post_for(slug: str, content: ItemContent, item: Item | None) -> Post:
    """The post of one success: its headline as the title, its SEO description as the excerpt, and the
    catalogue item's category and tags (none when the item has left the catalogue)."""
    categories, tags = ((item.category,), item.tags) if item is not None else ((), ())
    return Post(slug, content.headline, body_html(content), content.seo_description, categories, tags)


def idempotency_key(slug: str, target: str, content_hash: str) -> str:
    """One key per (slug, target, content hash), recorded before the call: a retry, replay or rerun of the
    same publish finds it and looks the post up instead of creating another."""
    return hashlib.sha256(f"{target}\0{slug}\0{content_hash}".encode()).hexdigest()[:32]
