"""The pre-publish quality gate: a good post passes; a post too short or long, hard to read, near a copy of
another live post or holding a forbidden phrase (however its markup hides it) is held with one reason line."""

from __future__ import annotations

import random
import re

import pytest

from content_pipeline.generation.content import ItemContent
from content_pipeline.publish.post import Post, post_for
from content_pipeline.publish.quality import (
    PublishedSketches,
    QualityRules,
    check,
    count_words,
    parse_phrases,
    visible_text,
)

DESCRIPTION = (
    "The Desk Lamp gives a warm and even light for reading and work. It folds flat when you do not need it, "
    "and the base holds your phone while it charges. The arm turns to any angle you like, and the light stays "
    "cool to the touch all day long."
)
GOOD = ItemContent(
    headline="Desk Lamp for the home office",
    description=DESCRIPTION,
    highlights=["Dimmable in five steps", "USB-C power", "Warm and cool light"],
    seo_description="A warm desk lamp that folds flat and charges your phone.",
)
RULES = QualityRules()
NOTHING_LIVE = PublishedSketches()
JARGON = (
    "Notwithstanding considerable institutional heterogeneity, organisational interoperability necessitates "
    "comprehensive standardisation, methodological harmonisation and infrastructural rationalisation, "
    "particularly regarding administrative responsibilities, jurisdictional accountability, "
    "technological modernisation, environmental sustainability, intergovernmental collaboration, "
    "international competitiveness, socioeconomic development, constitutional considerations, "
    "institutional transformation, operational effectiveness, organisational capability, "
    "programmatic implementation, regulatory simplification and bureaucratic decentralisation."
)


def lamp(slug: str = "desk-lamp", **changes: object) -> Post:
    return post_for(slug, GOOD.model_copy(update=changes), None)


def raw(title: str = "Desk Lamp", body: str = f"<p>{DESCRIPTION}</p>", excerpt: str = "A desk lamp.") -> Post:
    return Post("desk-lamp", title, body, excerpt)


def test_a_good_post_passes() -> None:
    post = lamp()
    assert count_words(visible_text(post.body_html)) == 60
    assert check(post, RULES, NOTHING_LIVE) is None


def test_a_short_body_is_held_with_its_word_count() -> None:
    post = lamp(description="A lamp. It is bright.", highlights=["Warm light"])
    assert check(post, RULES, NOTHING_LIVE) == "body has 7 words, under PUBLISH_MIN_WORDS 40"


def test_a_long_body_is_held_with_its_word_count() -> None:
    assert check(lamp(), QualityRules(max_words=50), NOTHING_LIVE) == "body has 60 words, over PUBLISH_MAX_WORDS 50"


def test_the_words_of_list_items_are_counted_apart_and_inline_markup_joins_nothing_apart() -> None:
    assert visible_text("<p>One <b>bold</b> word.</p><ul><li>two</li><li>three</li></ul>") == (
        "One bold word. two three"
    )
    assert count_words(visible_text("<ul><li>one</li><li>two</li></ul>")) == 2
    assert count_words("— • don't USB-C") == 2  # a lone dash or bullet is no word


def test_a_hard_to_read_body_is_held_with_its_flesch_score() -> None:
    reason = check(raw(body=f"<p>{JARGON}</p>"), RULES, NOTHING_LIVE)
    assert reason is not None
    found = re.fullmatch(r"readability (-?\d+\.\d) \(Flesch reading ease\), under PUBLISH_MIN_READABILITY 30", reason)
    assert found is not None, reason
    assert float(found.group(1)) < 30


def test_list_items_end_sentences_so_short_highlights_do_not_lower_readability() -> None:
    highlights = [f"Light number {n} is warm" for n in range(12)]
    assert check(lamp(highlights=highlights), RULES, NOTHING_LIVE) is None


def test_a_near_copy_of_another_live_post_is_held_naming_it() -> None:
    live = PublishedSketches([("other-lamp", visible_text(lamp().body_html)), ("kettle", "A kettle that boils water.")])
    assert check(lamp("desk-lamp"), RULES, live) == (
        "nearly copies the published post of 'other-lamp' (Jaccard 1.00, PUBLISH_NEAR_COPY 0.8)"
    )


def test_a_lightly_edited_copy_is_still_held_with_its_estimated_jaccard() -> None:
    live = PublishedSketches([("other-lamp", visible_text(lamp().body_html))])
    edited = lamp(description=DESCRIPTION.replace("all day long", "all evening long"))
    reason = check(edited, RULES, live)
    assert reason is not None and reason.startswith("nearly copies the published post of 'other-lamp' (Jaccard 0.")
    assert reason.endswith(", PUBLISH_NEAR_COPY 0.8)")


def test_an_update_of_the_same_slug_is_no_copy_of_itself() -> None:
    live = PublishedSketches([("desk-lamp", visible_text(lamp().body_html))])
    assert check(lamp("desk-lamp"), RULES, live) is None


def test_a_different_live_post_does_not_hold_it() -> None:
    other = "A steel kettle that boils a litre of water in three minutes and turns itself off when it is done."
    assert check(lamp(), RULES, PublishedSketches([("kettle", other)])) is None


def test_nearest_names_the_nearest_of_several_live_posts() -> None:
    text = visible_text(lamp().body_html)
    live = PublishedSketches([("far", text.replace("warm", "cold").replace("phone", "tablet")), ("near", text)])
    assert live.nearest("desk-lamp", text) == ("near", 1.0)
    assert live.nearest("near", text, at_least=0.99) is None  # itself left out, the other one is not that near
    live.add("near", "Something else entirely, about garden hoses and their fittings.")  # replaced, not added
    assert len(live) == 2 and live.nearest("desk-lamp", text, at_least=0.99) is None
    found = live.nearest("desk-lamp", text)
    assert found is not None and found[0] == "far" and 0 < found[1] < 1


@pytest.mark.parametrize(
    ("post", "field"),
    [
        (raw(title="Guaranteed CURE for dark desks"), "title"),
        (raw(body=f"<p>{DESCRIPTION} A guaranteed   cure for eye strain.</p>"), "body"),
        (raw(excerpt="The GUARANTEED cure."), "excerpt"),
    ],
)
def test_a_forbidden_phrase_is_held_case_insensitively_naming_the_field(post: Post, field: str) -> None:
    rules = QualityRules(forbidden=("miracle", "guaranteed cure"))
    assert (
        check(post, rules, NOTHING_LIVE)
        == f"forbidden phrase 'guaranteed cure' in the {field} (PUBLISH_FORBIDDEN_PHRASES)"
    )


def test_a_forbidden_word_inside_another_word_does_not_hold_it() -> None:
    rules = QualityRules(forbidden=("cure", "lamp shade"))
    post = raw(title="A secure lamp", body=f"<p>{DESCRIPTION} It is secured, curated and manicured.</p>")
    assert check(post, rules, NOTHING_LIVE) is None
    assert check(raw(title="A cure-all lamp"), rules, NOTHING_LIVE) is not None  # a hyphen is a word boundary


@pytest.mark.parametrize(
    "title",
    [
        "Guaran<b>teed</b> cure",  # a tag inside the word
        "&lt;i&gt;Guaranteed&lt;/i&gt; cure",  # an encoded tag
        "&#71;uaranteed &amp;#99;ure",  # entities, one of them encoded twice
        "Guaran&shy;teed cure",  # a soft hyphen
        "Guaranteed\u200b cure",  # a zero-width space
        "Ｇｕａｒａｎｔｅｅｄ cure",  # full-width letters
        "Guaranteed<!-- x -->\n cure",  # a comment and a line break
    ],
)
def test_a_forbidden_phrase_hidden_by_markup_or_entities_is_still_caught(title: str) -> None:
    rules = QualityRules(forbidden=("guaranteed cure",))
    assert check(raw(title=title), rules, NOTHING_LIVE) == (
        "forbidden phrase 'guaranteed cure' in the title (PUBLISH_FORBIDDEN_PHRASES)"
    )


def test_catalogue_markup_in_the_content_does_not_hide_a_phrase_from_the_gate() -> None:
    post = lamp(headline="A guaran<b>teed</b> cure for dark desks")
    assert check(post, QualityRules(forbidden=("guaranteed cure",)), NOTHING_LIVE) == (
        "forbidden phrase 'guaranteed cure' in the title (PUBLISH_FORBIDDEN_PHRASES)"
    )


def test_the_checks_run_in_order_forbidden_then_length_then_readability_then_near_copy() -> None:
    copy_of_jargon = PublishedSketches([("other", JARGON)])
    short = raw(title="Miracle lamp", body="<p>Short.</p>")
    assert check(short, QualityRules(forbidden=("miracle",)), copy_of_jargon) == (
        "forbidden phrase 'miracle' in the title (PUBLISH_FORBIDDEN_PHRASES)"
    )
    assert (check(short, RULES, copy_of_jargon) or "").startswith("body has 1 words")
    assert (check(raw(body=f"<p>{JARGON}</p>"), RULES, copy_of_jargon) or "").startswith("readability ")


def test_each_threshold_can_be_turned_off() -> None:
    short_hard_copy = raw(body="<p>Notwithstanding institutional heterogeneity, interoperability necessitates.</p>")
    live = PublishedSketches([("other", visible_text(short_hard_copy.body_html))])
    off = QualityRules(min_words=0, max_words=0, min_readability=None, near_copy=None)
    assert check(short_hard_copy, off, live) is None
    assert check(short_hard_copy, QualityRules(min_words=0, min_readability=None, near_copy=1.0), live) is None
    assert check(raw(body=f"<p>{DESCRIPTION * 100}</p>"), QualityRules(max_words=0), NOTHING_LIVE) is None


def test_rules_that_cannot_hold_together_are_refused() -> None:
    with pytest.raises(ValueError, match="PUBLISH_MIN_WORDS 50 is over PUBLISH_MAX_WORDS 10"):
        QualityRules(min_words=50, max_words=10)
    with pytest.raises(ValueError, match="PUBLISH_NEAR_COPY"):
        QualityRules(near_copy=0)


def test_parse_phrases_splits_on_commas_and_newlines_trimmed_without_empties() -> None:
    assert parse_phrases(" guaranteed cure, miracle\n\n  ,risk-free \r\nno side effects,") == (
        "guaranteed cure",
        "miracle",
        "risk-free",
        "no side effects",
    )
    assert parse_phrases("") == () and parse_phrases(" , \n ") == ()


def test_ten_thousand_live_posts_answer_with_the_copied_one() -> None:
    rng = random.Random(7)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(3000)]
    boilerplate = "Free shipping on every order over fifty dollars and returns within thirty days."
    texts = {f"item-{n:05d}": f"{' '.join(rng.choices(vocabulary, k=40))}. {boilerplate}" for n in range(10_000)}
    live = PublishedSketches(texts.items())
    assert len(live) == 10_000

    copied = Post("new-item", "New item", f"<p>{texts['item-05000']}</p>", "New.")
    assert check(copied, QualityRules(min_readability=None), live) == (
        "nearly copies the published post of 'item-05000' (Jaccard 1.00, PUBLISH_NEAR_COPY 0.8)"
    )
    fresh = Post("new-item", "New item", f"<p>{' '.join(rng.choices(vocabulary, k=40))}. {boilerplate}</p>", "New.")
    assert check(fresh, QualityRules(min_readability=None), live) is None
    assert live.nearest("item-05000", texts["item-05000"], at_least=0.8) is None  # itself only
