"""The pre-publish quality gate: a post's length, readability, forbidden phrases and near-copies of live posts."""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import textstat

from content_pipeline.generation.nearcopy import FREQUENT_HASH, estimate_jaccard, sketch
from content_pipeline.publish.post import Post, plain_text

# A tag that ends a block of text as a browser shows it: the words on either side of it are not one word
# (`<li>a</li><li>b</li>` reads "a b"), unlike an inline tag (`guaran<b>teed</b>` reads "guaranteed").
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|hr|li|ul|ol|dl|dt|dd|h[1-6]|blockquote|pre|table|thead|tbody|tr|td|th|section|article"
    r"|header|footer|aside|nav|figure|figcaption|main)\b[^<>]*>",
    re.IGNORECASE,
)
_BLOCK_END = "\ue000"  # a private-use character: where a block tag was, until the text is split there
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")  # a block that ends a sentence already
_HAS_WORD = re.compile(r"\w")
_ROUNDS = 5  # as post.plain_text: entities nested deeper than this stay text


@dataclass(frozen=True)
class QualityRules:
    """What a post must meet to go out; a post that misses one is held with the reason, not published."""

    min_words: int = 40
    """PUBLISH_MIN_WORDS: fewest words in the body (its plain text); 0 turns the bound off."""
    max_words: int = 2000
    """PUBLISH_MAX_WORDS: most words in the body; 0 turns the bound off."""
    min_readability: float | None = 30.0
    """PUBLISH_MIN_READABILITY: lowest Flesch reading ease of the body (about 0-100, higher is easier; 30 is
    college level); None turns the check off."""
    near_copy: float | None = 0.8
    """PUBLISH_NEAR_COPY: estimated Jaccard similarity of word 3-shingles at or over which the body is a near
    copy of another published post's (MinHash sketches, as the generation stage's near-copy check); None, or
    1.0 and over, turns the check off."""
    forbidden: tuple[str, ...] = ()
    """PUBLISH_FORBIDDEN_PHRASES: phrases no title, body or excerpt may hold, matched case-insensitively on
    word boundaries (forbidding `cure` does not hold `secure`); empty: none."""

    def __post_init__(self) -> None:
        if self.min_words < 0 or self.max_words < 0:
            raise ValueError("PUBLISH_MIN_WORDS and PUBLISH_MAX_WORDS must be 0 (off) or more")
        if self.min_words and self.max_words and self.min_words > self.max_words:
            raise ValueError(f"PUBLISH_MIN_WORDS {self.min_words} is over PUBLISH_MAX_WORDS {self.max_words}")
        if self.near_copy is not None and self.near_copy <= 0:
            raise ValueError("PUBLISH_NEAR_COPY must be over 0 (or off)")

    @property
    def near_copy_on(self) -> bool:
        return self.near_copy is not None and self.near_copy < 1.0


class PublishedSketches:
    """The MinHash sketches of the bodies of the posts already live on a target, with an inverted index over
    their hashes, so the nearest one to a candidate is found without comparing it with every post."""

    def __init__(self, posts: Iterable[tuple[str, str]] = ()) -> None:
        """`posts`: (slug, plain body text) of each live post (`visible_text` of its HTML); a slug given
        twice keeps its last text."""
        self._sketches: dict[str, list[int]] = {}
        self._by_hash: dict[int, set[str]] = {}
        for slug, text in posts:
            self.add(slug, text)

    def __len__(self) -> int:
        return len(self._sketches)

    def __contains__(self, slug: object) -> bool:
        return slug in self._sketches

    def add(self, slug: str, text: str) -> None:
        """Register (or replace) the live post of `slug` with its plain body text."""
        self.add_sketch(slug, sketch(text))

    def add_sketch(self, slug: str, signature: list[int]) -> None:
        old = self._sketches.get(slug)
        if old is not None:
            for h in old:
                self._by_hash[h].discard(slug)
        self._sketches[slug] = signature
        for h in signature:
            self._by_hash.setdefault(h, set()).add(slug)

    def nearest(self, slug: str, text: str, at_least: float = 0.0) -> tuple[str, float] | None:
        """The live post other than `slug` (an update of an item is no copy of itself) whose body is nearest
        `text`, and their estimated Jaccard: one at or over `at_least` (a higher bound makes it faster) and
        over 0, else None."""
        return self.nearest_sketch(slug, sketch(text), at_least)

    def nearest_sketch(self, slug: str, signature: list[int], at_least: float = 0.0) -> tuple[str, float] | None:
        if not signature:
            return None
        # A post at estimated Jaccard J shares at least J x len(signature) hashes with it (the estimate's
        # denominator is never under len(signature)). As NearCopyIndex does, hashes in many sketches
        # (boilerplate) are left out of the count when the rare ones can still reach the bound: lossless.
        need = len(signature) * at_least - 1e-9  # 0.7 x 10 is 7.000000000000001 in floats
        postings = [self._by_hash.get(h, set()) for h in signature]
        frequent = sum(len(p) > FREQUENT_HASH for p in postings)
        rare_only = need - frequent > 0
        counts: Counter[str] = Counter()
        for posting in postings:
            if len(posting) <= FREQUENT_HASH or not rare_only:
                counts.update(posting)
        counts.pop(slug, None)
        floor = need - frequent if rare_only else need
        unseen = frequent if rare_only else 0  # shared hashes the count may have missed
        best: tuple[str, float] | None = None
        for other, shared in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if shared < floor:
                break
            if best is not None and (shared + unseen) / len(signature) < best[1]:
                break  # no post further down can be nearer
            jaccard = estimate_jaccard(signature, self._sketches[other])
            if jaccard >= at_least and jaccard > (best[1] if best is not None else 0.0):
                best = (other, jaccard)
        return best


def _blocks(text: str) -> list[str]:
    """The plain text (`plain_text`) of each block of `text` (HTML), in order, empty ones left out."""
    text = text.replace(_BLOCK_END, "")
    for _ in range(_ROUNDS):  # as plain_text does first, so that an encoded block tag ends a block too
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    plain = plain_text(_BLOCK_TAG.sub(_BLOCK_END, text))  # a script's or comment's block tags go with it
    return [block for piece in plain.split(_BLOCK_END) if (block := piece.strip())]


def visible_text(text: str) -> str:
    """The plain text a reader sees of `text` (HTML): `plain_text`, with a space where a block ends."""
    return " ".join(_blocks(text))


def _readable_text(text: str) -> str:
    """The body as sentences for the readability formula: a block without end punctuation (a list item, a
    heading) ends a sentence, rather than running into the next block."""
    return " ".join(block if _SENTENCE_END.search(block) else f"{block}." for block in _blocks(text))


def count_words(text: str) -> int:
    """Words in plain `text`: runs of non-space holding a letter or digit (`don't` and `USB-C` are one)."""
    return sum(1 for token in text.split() if _HAS_WORD.search(token))


def readability(text: str) -> float:
    """Flesch reading ease of plain `text` (textstat, en_US syllables from pyphen's bundled dictionary)."""
    return float(textstat.flesch_reading_ease(text))


def _fold(text: str) -> str:
    """Text as phrases are matched on: NFKC (full-width letters as letters), format characters (soft hyphen,
    zero-width space) dropped, case-folded."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if unicodedata.category(c) != "Cf").casefold()


def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    parts = _fold(phrase).split()
    if not parts:
        return None
    return re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, parts)) + r"(?!\w)")


def forbidden_phrase(post: Post, phrases: Iterable[str]) -> tuple[str, str] | None:
    """The first of `phrases` that the post holds and the field it is in (title, body or excerpt)."""
    fields = (
        ("title", _fold(visible_text(post.title))),
        ("body", _fold(visible_text(post.body_html))),
        ("excerpt", _fold(visible_text(post.excerpt))),
    )
    for phrase in phrases:
        pattern = _phrase_pattern(phrase)
        if pattern is None:
            continue
        for name, text in fields:
            if pattern.search(text):
                return phrase, name
    return None


def _figure(value: float, limit: float, *, under: bool, places: int = 1) -> str:
    """`value` with the fewest decimals (from `places`) that still show it on its side of `limit`."""
    for digits in range(places, 5):
        shown = round(value, digits)
        if (shown < limit) if under else (shown >= limit):
            return f"{value:.{digits}f}"
    return repr(value)


def check(post: Post, rules: QualityRules, published: PublishedSketches) -> str | None:
    """None when the post may go out, else the one line saying what holds it, with its figures. Checked in
    order: forbidden phrases, length, readability, near-copy of another live post (`published`)."""
    found = forbidden_phrase(post, rules.forbidden)
    if found is not None:
        phrase, field = found
        return f"forbidden phrase {phrase!r} in the {field} (PUBLISH_FORBIDDEN_PHRASES)"
    body = visible_text(post.body_html)
    words = count_words(body)
    if rules.min_words and words < rules.min_words:
        return f"body has {words} words, under PUBLISH_MIN_WORDS {rules.min_words}"
    if rules.max_words and words > rules.max_words:
        return f"body has {words} words, over PUBLISH_MAX_WORDS {rules.max_words}"
    if rules.min_readability is not None:
        score = readability(_readable_text(post.body_html))
        if score < rules.min_readability:
            shown = _figure(score, rules.min_readability, under=True)
            return f"readability {shown} (Flesch reading ease), under PUBLISH_MIN_READABILITY {rules.min_readability:g}"
    if rules.near_copy is not None and rules.near_copy_on:
        near = published.nearest(post.slug, body, rules.near_copy)
        if near is not None:
            other, jaccard = near
            shown = _figure(jaccard, rules.near_copy, under=False, places=2)
            return f"nearly copies the published post of {other!r} (Jaccard {shown}, PUBLISH_NEAR_COPY {rules.near_copy:g})"
    return None


def parse_phrases(text: str) -> tuple[str, ...]:
    """PUBLISH_FORBIDDEN_PHRASES' value as phrases: comma- or newline-separated, trimmed, empties dropped."""
    return tuple(phrase for part in re.split(r"[,\r\n]", text) if (phrase := part.strip()))
