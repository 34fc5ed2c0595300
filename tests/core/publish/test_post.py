"""The post of one success: plain escaped text (no markup from the catalogue or the model), a content hash that follows the content, one idempotency key per
slug, target and content."""

from __future__ import annotations

import pytest

from content_pipeline.generation.content import ItemContent
from content_pipeline.intake.catalogue import Item
from content_pipeline.publish.post import idempotency_key, post_for, safe_html

CONTENT = ItemContent(
    headline="Desk Lamp | Lighting",
    description="Meet the Desk Lamp <b>bright</b> & warm, a lighting pick at $19.00.",
    highlights=["Dimmable", "USB-C <power>", "Warm & cool light"],
    seo_description="Desk Lamp: lighting at $19.00.",
)
ITEM = Item(slug="desk-lamp", title="Desk Lamp", category="Lighting", price=19.0, tags=("lamp",))


def test_the_body_is_plain_escaped_text_and_the_title_and_excerpt_come_from_the_content() -> None:
    post = post_for("desk-lamp", CONTENT, ITEM)
    assert post.title == "Desk Lamp | Lighting" and post.excerpt == "Desk Lamp: lighting at $19.00."
    assert post.body_html == (
        "<p>Meet the Desk Lamp bright &amp; warm, a lighting pick at $19.00.</p>\n"
        "<ul><li>Dimmable</li><li>USB-C</li><li>Warm &amp; cool light</li></ul>"
    )
    assert post.payload()["categories"] == ["Lighting"] and post.payload()["tags"] == ["lamp"]


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ('Lamp <script>alert("x")</script>', "Lamp"),
        ("<img src=x onerror=alert(1)>Lamp", "Lamp"),
        ('<a href="javascript:alert(1)">Lamp</a>', "Lamp"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Lamp", "Lamp"),  # entities are decoded before tags go
        ("&amp;lt;svg onload=alert(1)&amp;gt;Lamp", "Lamp"),
        ("<scr<script>x</script>ipt>alert(1)</script>Lamp", "alert(1)Lamp"),  # nested: text, never a tag
        ("<!-- wp:html --><svg/onload=alert(1)>Lamp", "Lamp"),
        ("[embed]https://example.com[/embed]", "&#91;embed&#93;https&#58;//example.com&#91;/embed&#93;"),
        ("a < b > c & d", "a &lt; b &gt; c &amp; d"),
        ("line\n\nhttps://www.youtube.com/watch?v=x\n", "line https&#58;//www.youtube.com/watch?v=x"),
        ("HTTP://example.com/a?b=1&c=2", "HTTP&#58;//example.com/a?b=1&amp;c=2"),  # alone in a <p>: no embed
        ('Salt &amp; Pepper\'s "best"', 'Salt &amp; Pepper\'s "best"'),
    ],
)
def test_every_text_goes_out_without_markup(text: str, sent: str) -> None:
    assert safe_html(text) == sent
    assert "<" not in safe_html(text) and "[" not in safe_html(text)


def test_the_content_hash_and_the_key_change_with_the_content_and_the_target_only() -> None:
    same = post_for("desk-lamp", CONTENT, ITEM)
    changed = post_for("desk-lamp", CONTENT.model_copy(update={"headline": "Desk Lamp, new"}), ITEM)
    assert same.content_hash == post_for("desk-lamp", CONTENT, ITEM).content_hash
    assert changed.content_hash != same.content_hash
    key = idempotency_key("desk-lamp", "wordpress", same.content_hash)
    assert key == idempotency_key("desk-lamp", "wordpress", same.content_hash)
    assert key != idempotency_key("desk-lamp", "webhook", same.content_hash)
    assert key != idempotency_key("desk-lamp", "wordpress", changed.content_hash)


def test_an_item_gone_from_the_catalogue_is_posted_without_category_or_tags() -> None:
    post = post_for("desk-lamp", CONTENT, None)
    assert post.categories == () and post.tags == ()
