"""What goes out for one success: the post (title, HTML body, excerpt, slug, categories, tags), its
content hash, and the idempotency key that makes a publish happen once per slug, target and content. Every
text from the catalogue or the model goes out as plain text: its markup taken out, then escaped."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from content_pipeline.generation.content import ItemContent
from content_pipeline.intake.catalogue import Item

_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_MARKUP = re.compile(r"<!--.*?-->|<[a-zA-Z/!?][^<>]*>", re.DOTALL)
_BREAK = re.compile(r"\s*[\x00-\x1f\x7f\x85\u2028\u2029]\s*")  # a line break or control character, with its spaces
_WEB_URL = re.compile(r"\b(https?):(?=//)", re.IGNORECASE)  # what WordPress's auto-embed looks for
_ROUNDS = 5  # entities or tags nested deeper than this are left to the final escape, which makes them text


def _until_stable(change: Callable[[str], str], text: str) -> str:
    for _ in range(_ROUNDS):
        changed = change(text)
        if changed == text:
            break
        text = changed
    return text


def plain_text(text: str) -> str:
    """`text` as plain text: entities decoded, script and style elements dropped with their content, every
    other tag or comment dropped (its text kept), line breaks and control characters made one space (a URL
    alone on a line would become an embed)."""
    text = _until_stable(html.unescape, text)
    text = _until_stable(lambda t: _MARKUP.sub("", _SCRIPT.sub("", t)), text)
    return _BREAK.sub(" ", text).strip()


def safe_html(text: str, quote: bool = False) -> str:
    """`text` as HTML that holds no markup whatever the WordPress user's role (`unfiltered_html` included):
    plain text (`plain_text`) with `&`, `<` and `>` (and with `quote`, quotes) escaped, `[` `]` as entities
    so WordPress runs no shortcode from it, and the colon of an `http(s)://` URL as `&#58;` so a paragraph
    holding only a URL is not turned into an embed (a reader sees the same text)."""
    escaped = html.escape(plain_text(text), quote=quote)
    return _WEB_URL.sub(r"\1&#58;", escaped.replace("[", "&#91;").replace("]", "&#93;"))


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
    """The description as a paragraph and the highlights as a list: the only tags in it are `<p>`, `<ul>`
    and `<li>`, without attributes; every text is `safe_html` (quotes escaped too, as before markup was
    taken out, so the content hash of a body without markup stays as it was)."""
    items = "".join(f"<li>{safe_html(line, quote=True)}</li>" for line in content.highlights)
    return f"<p>{safe_html(content.description, quote=True)}</p>\n<ul>{items}</ul>"


def post_for(slug: str, content: ItemContent, item: Item | None) -> Post:
    """The post of one success: its headline as the title, its SEO description as the excerpt (both
    `safe_html`: WordPress keeps an administrator's title and excerpt as sent), and the catalogue item's
    category and tags (none when the item has left the catalogue; the target makes their names safe)."""
    categories, tags = ((item.category,), item.tags) if item is not None else ((), ())
    title, excerpt = safe_html(content.headline), safe_html(content.seo_description)
    return Post(slug, title, body_html(content), excerpt, categories, tags)


def idempotency_key(slug: str, target: str, content_hash: str) -> str:
    """One key per (slug, target, content hash), recorded before the call: a retry, replay or rerun of the
    same publish finds it and looks the post up instead of creating another."""
    return hashlib.sha256(f"{target}\0{slug}\0{content_hash}".encode()).hexdigest()[:32]
