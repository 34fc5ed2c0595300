"""Quality checks on generated content: schema, length bounds, error or refusal text, fields used."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from content_pipeline.generation.content import BOUNDS, HIGHLIGHT_LEN, HIGHLIGHTS, ItemContent
from content_pipeline.generation.prompts import SYSTEM_PROMPT
from content_pipeline.intake.catalogue import Item

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
_WORD = re.compile(r"[a-z0-9]+")


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


def words(text: str) -> list[str]:
    """The text's words, lower-cased (letters and digits)."""
    return _WORD.findall(text.lower())


def _covers(text_words: set[str], phrase: str, share: float) -> bool:
    found = [w for w in words(phrase) if len(w) >= 3] or words(phrase)
    if not found:
        return True
    return sum(w in text_words for w in found) / len(found) >= share


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


def check_content(content: ItemContent, item: Item, system: str = SYSTEM_PROMPT) -> Verdict:
    """Length bounds, error/refusal text, the `system` prompt leaked, and that the item's own fields were
    used."""
    if (wrong := _lengths(content)) is not None:
        return wrong
    everything = " ".join([content.headline, content.description, content.seo_description, *content.highlights])
    lowered = everything.lower()
    if system[:60].lower() in lowered:
        return Verdict(False, "prompt_leak", "the content repeats the system prompt")
    bad = bad_text(everything, lowered)
    if bad:
        return Verdict(False, "error_text", f"error or refusal text {bad.group(0)!r} in the content")
    return _fields_used(set(words(everything)), item)


def _lengths(content: ItemContent) -> Verdict | None:
    """The first length bound the content breaks, or None."""
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
    return None


def _fields_used(used: set[str], item: Item) -> Verdict:
    """OK when the content names the item's title and category and uses one of its features."""
    if not _covers(used, item.title, 0.6):
        return Verdict(False, "fields_unused", "the content does not name the item's title")
    if not _covers(used, item.category, 0.5):
        return Verdict(False, "fields_unused", "the content does not name the item's category")
    if item.features and not any(_covers(used, f, 0.5) for f in item.features):
        return Verdict(False, "fields_unused", "the content uses none of the item's features")
    return OK


def bad_text(text: str, lowered: str | None = None) -> re.Match[str] | None:
    """The first error or refusal phrase in `text` (`_BAD_TEXT`), or None."""
    if text.isascii():
        lowered = text.lower() if lowered is None else lowered
        if not any(needed in lowered for needed in _BAD_TEXT_NEEDS):
            return None
    return _BAD_TEXT.search(text)
