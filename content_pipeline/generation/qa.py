"""Quality checks on generated content: schema, leaked prompt (canary, verbatim run), length bounds, error or
refusal text, fields used."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

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
# a run of this many consecutive words of the system prompt in the content is a leak: long enough that
# product copy does not repeat one by chance (the offline writer's copy of the sample catalogue shares at
# most 2 consecutive words with the default template; its longest stock phrase, "naming the product and
# its category", has 6), short enough that a leaked sentence, or most of one, is caught
LEAK_RUN = 8
_MIN_RUN = 5  # a system prompt shorter than LEAK_RUN words is checked whole, if it has this many


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


def check_content(content: ItemContent, item: Item, system: str = SYSTEM_PROMPT, canary: str = "") -> Verdict:
    """The `system` prompt leaked (its run's `canary`, or a long verbatim run of it, in any field), length
    bounds, error/refusal text, and that the item's own fields were used."""
    everything = " ".join([content.headline, content.description, content.seo_description, *content.highlights])
    lowered = everything.lower()
    found = _WORD.findall(lowered)
    if (leak := prompt_leak(found, system, canary, item)) is not None:
        return leak
    if (wrong := _lengths(content)) is not None:
        return wrong
    bad = bad_text(everything, lowered)
    if bad:
        return Verdict(False, "error_text", f"error or refusal text {bad.group(0)!r} in the content")
    return _fields_used(set(found), item)


@lru_cache(maxsize=64)
def _shingles(system: str) -> tuple[int, frozenset[str], frozenset[tuple[str, ...]]]:
    """The run length checked for `system`, its words, and each run of that many consecutive words of it
    (computed once per template)."""
    found = words(system)
    size = LEAK_RUN if len(found) >= LEAK_RUN else len(found)
    if size < _MIN_RUN:
        return size, frozenset(), frozenset()
    runs = frozenset(tuple(found[i : i + size]) for i in range(len(found) - size + 1))
    return size, frozenset(found), runs


def prompt_leak(text_words: list[str], system: str, canary: str, item: Item) -> Verdict | None:
    """A prompt_leak verdict when the content's words hold the run's canary (its hex, however it is
    separated) or a run of LEAK_RUN consecutive words of `system` that the item's own fields do not hold;
    else None. The detail never quotes the canary nor the prompt."""
    if canary and canary.removeprefix("cp-") in "".join(text_words):
        return Verdict(False, "prompt_leak", "the content repeats the run's canary token from the system prompt")
    size, vocabulary, runs = _shingles(system)
    if not runs:
        return None
    streak, own = 0, None
    for end, word in enumerate(text_words, start=1):
        streak = streak + 1 if word in vocabulary else 0
        if streak < size or (run := tuple(text_words[end - size : end])) not in runs:
            continue
        own = _item_runs(item, size) if own is None else own
        if run not in own:
            return Verdict(False, "prompt_leak", f"the content repeats {size}+ consecutive words of the system prompt")
    return None


def _item_runs(item: Item, size: int) -> set[tuple[str, ...]]:
    """The runs of `size` words in the item's own text (copying those is no leak); read only on a hit."""
    found = words(" ".join(str(value) for value in item.model_dump().values()))
    return {tuple(found[i : i + size]) for i in range(len(found) - size + 1)}


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
