"""Quality checks on generated content: schema, length bounds, error or refusal text, fields used, near-copies."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass

from pydantic import ValidationError

from content_pipeline.catalogue import Item
from content_pipeline.prompts import SYSTEM_PROMPT, ItemContent

BOUNDS = {"headline": (10, 120), "description": (200, 2000), "seo_description": (50, 170)}
HIGHLIGHTS = (3, 6)
HIGHLIGHT_LEN = (3, 200)
_BAD_TEXT = re.compile(
    r"\bas an ai\b|\bi'?m sorry\b|\bi am sorry\b|\bi (?:cannot|can ?not|can't|won't) (?:help|assist|comply|provide|write)"
    r"|traceback \(most recent call last\)|internal server error|rate limit exceeded|\blorem ipsum\b"
    r"|\[object object\]|\berror:\s|</?item>|\{\{|\}\}",
    re.IGNORECASE,
)
# A literal that every match of _BAD_TEXT contains, in lower case: text without any of them cannot match.
# Checked only on ASCII text, where a case-insensitive match is a match on the lower-cased text (the
# regex costs ~130 us per item; these checks ~5 us). Keep in step with _BAD_TEXT (tests check it).
_BAD_TEXT_NEEDS = (
    "as an ai",
    "m sorry",
    "i can",
    "i won't",
    "traceback (most recent call last)",
    "internal server error",
    "rate limit exceeded",
    "lorem ipsum",
    "[object object]",
    "error:",
    "item>",
    "{{",
    "}}",
)
_LEAK = SYSTEM_PROMPT[:60].lower()
_WORD = re.compile(r"[a-z0-9]+")
SKETCH_SIZE = 32
NEAR_COPY_JACCARD = 0.8
FREQUENT_HASH = 64  # a shingle hash in more sketches than this is boilerplate for candidate counting


@dataclass(frozen=True)
class Verdict:
    """QA's decision: ok, or a reason code and a one-line detail."""

    ok: bool
    reason: str | None = None
    detail: str | None = None

    @property
    def error(self) -> str:
        return f"{self.reason}: {self.detail}"


OK = Verdict(True)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _covers(text_words: set[str], phrase: str, share: float) -> bool:
    words = [w for w in _words(phrase) if len(w) >= 3] or _words(phrase)
    if not words:
        return True
    return sum(w in text_words for w in words) / len(words) >= share


def parse_content(
    text: str | None, finish_reason: str | None, refusal: str | None
) -> tuple[ItemContent | None, Verdict]:
    """The model's answer as ItemContent, or the reason it is not one."""
    if refusal:
        return None, Verdict(False, "refusal", refusal.strip()[:200])
    if finish_reason == "length":
        return None, Verdict(False, "truncated", "the answer hit max_tokens (finish_reason=length)")
    if finish_reason == "content_filter":
        return None, Verdict(False, "content_filter", "the provider filtered the answer")
    if not text or not text.strip():
        return None, Verdict(False, "empty", "the model returned no content")
    try:
        return ItemContent.model_validate_json(text), OK
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        return None, Verdict(False, "schema", f"{where}: {first['msg']}")


def check_content(content: ItemContent, item: Item) -> Verdict:
    """Length bounds, error/refusal text, leaked prompt, and that the item's own fields were used."""
    for name, (low, high) in BOUNDS.items():
        size = len(getattr(content, name).strip())
        if not low <= size <= high:
            return Verdict(False, "length", f"{name} has {size} characters (allowed {low}-{high})")
    if not HIGHLIGHTS[0] <= len(content.highlights) <= HIGHLIGHTS[1]:
        return Verdict(
            False, "length", f"{len(content.highlights)} highlights (allowed {HIGHLIGHTS[0]}-{HIGHLIGHTS[1]})"
        )
    for line in content.highlights:
        if not HIGHLIGHT_LEN[0] <= len(line.strip()) <= HIGHLIGHT_LEN[1]:
            return Verdict(False, "length", f"a highlight has {len(line.strip())} characters")
    everything = " ".join([content.headline, content.description, content.seo_description, *content.highlights])
    lowered = everything.lower()
    if _LEAK in lowered:
        return Verdict(False, "prompt_leak", "the content repeats the system prompt")
    bad = bad_text(everything, lowered)
    if bad:
        return Verdict(False, "error_text", f"error or refusal text {bad.group(0)!r} in the content")
    words = set(_words(everything))
    if not _covers(words, item.title, 0.6):
        return Verdict(False, "fields_unused", "the content does not name the item's title")
    if not _covers(words, item.category, 0.5):
        return Verdict(False, "fields_unused", "the content does not name the item's category")
    if item.features and not any(_covers(words, f, 0.5) for f in item.features):
        return Verdict(False, "fields_unused", "the content uses none of the item's features")
    return OK


def bad_text(text: str, lowered: str | None = None) -> re.Match[str] | None:
    """The first error or refusal phrase in `text` (`_BAD_TEXT`), or None."""
    if text.isascii():
        lowered = text.lower() if lowered is None else lowered
        if not any(needed in lowered for needed in _BAD_TEXT_NEEDS):
            return None
    return _BAD_TEXT.search(text)


def sketch(text: str) -> list[int]:
    """Bottom-k MinHash sketch of the text's word 3-shingles: a compact fingerprint for near-copy checks."""
    words = _words(text)
    shingles = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
    hashes = {int.from_bytes(hashlib.blake2b(s.encode(), digest_size=7).digest(), "big") for s in shingles}
    return sorted(hashes)[:SKETCH_SIZE]


def estimate_jaccard(a: list[int], b: list[int]) -> float:
    union_k = sorted(set(a) | set(b))[:SKETCH_SIZE]
    if not union_k:
        return 0.0
    both = set(a) & set(b)
    return sum(h in both for h in union_k) / len(union_k)


class NearCopyIndex:
    """Sketches of content already accepted; `claim` checks a new one and registers it atomically."""

    def __init__(self) -> None:
        self._by_hash: dict[int, set[str]] = {}
        self._sketches: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sketches)

    def add(self, slug: str, signature: list[int]) -> None:
        self._sketches[slug] = signature
        for h in signature:
            self._by_hash.setdefault(h, set()).add(slug)

    def _match(self, slug: str, signature: list[int]) -> str | None:
        # A near-copy (estimated Jaccard >= J) shares at least J x len(signature) hashes of its sketch.
        # Hashes of boilerplate are shared by many items; counting only the rare ones, it must still share
        # J x len - (frequent hashes in the signature) of them. Lossless, and no longer O(items) per claim.
        need = len(signature) * NEAR_COPY_JACCARD
        postings = [self._by_hash.get(h, ()) for h in signature]
        frequent = sum(len(p) > FREQUENT_HASH for p in postings)
        rare_only = need - frequent > 0  # else the sketch is nearly all boilerplate: count every hash
        counts: Counter[str] = Counter()
        for posting in postings:
            if len(posting) <= FREQUENT_HASH or not rare_only:
                counts.update(posting)
        for other, shared in counts.most_common():
            if shared < (need - frequent if rare_only else need):
                break
            if other != slug and estimate_jaccard(signature, self._sketches[other]) >= NEAR_COPY_JACCARD:
                return other
        return None

    def claim(self, slug: str, signature: list[int]) -> Verdict:
        """OK and registered, or a near_copy verdict naming the item it copies."""
        with self._lock:
            other = self._match(slug, signature)
            if other is not None:
                return Verdict(False, "near_copy", f"the description nearly copies that of {other!r}")
            self.add(slug, signature)
            return OK
