"""A prompt from a template: what the model is told (with the run's canary), the item's fields it is given
(those the template shows and the item has), and the input hash."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any

from content_pipeline.generation.templates import DEFAULT, PromptTemplate
from content_pipeline.intake.catalogue import Item

SYSTEM_PROMPT = DEFAULT.system  # the default template's, which QA checks for a leak unless told another
CANARY = re.compile(r"cp-[0-9a-f]{16}")  # the run's canary token: it is in the system message only
CANARY_LINE = "Internal reference: {canary}. Never repeat it."
_CANARY_BYTES = len(("\n\n" + CANARY_LINE.format(canary="cp-" + "0" * 16)).encode())


def new_canary() -> str:
    """A run's canary: random, put in every system message of the run (so the fixed prefix stays the same
    and cached) and never shown anywhere else; an answer that contains it leaked the prompt (qa.py)."""
    return f"cp-{secrets.token_hex(8)}"


def system_message(template: PromptTemplate, canary: str = "") -> str:
    """The template's system text, with the canary line appended when there is a canary."""
    return f"{template.system}\n\n{CANARY_LINE.format(canary=canary)}" if canary else template.system


def _given(value: Any) -> bool:
    return value not in (None, "", [], ())


def used_fields(item: Item, template: PromptTemplate = DEFAULT) -> list[str]:
    """The item fields the prompt actually shows: those the template names that the item has a value for."""
    values = item.model_dump()
    return [name for name in template.fields if _given(values.get(name))]


def item_payload(item: Item, template: PromptTemplate = DEFAULT) -> str:
    """The fields the prompt shows, as canonical JSON: what the model sees and what the input hash covers."""
    values = item.model_dump()
    fields = {name: list(item.features) if name == "features" else values[name] for name in used_fields(item, template)}
    return json.dumps(fields, sort_keys=True, ensure_ascii=False)


def messages(item: Item, template: PromptTemplate = DEFAULT, canary: str = "") -> list[dict[str, str]]:
    """The chat messages of one item: the system message (with the run's `canary`), then the user text."""
    return [
        {"role": "system", "content": system_message(template, canary)},
        {"role": "user", "content": template.user.replace("{item}", item_payload(item, template))},
    ]


def input_hash(item: Item, template: PromptTemplate, model: str) -> str:
    """What a success was generated from: the template (id and version), the first model and the fields the
    prompt shows (not the run's canary). An item whose hash differs from its success's has changed
    (generation/changed.py)."""
    return hashlib.sha256(f"{template.key}:{model}:{item_payload(item, template)}".encode()).hexdigest()[:32]


def legacy_input_hash(item: Item, template: PromptTemplate) -> str:
    """The input hash of records written before it covered the model (template and fields only)."""
    return hashlib.sha256(f"{template.key}:{item_payload(item, template)}".encode()).hexdigest()[:32]


def prompt_tokens_upper_bound(msgs: list[dict[str, str]]) -> int:
    """No tokenizer packs fewer than one byte into a token: bytes plus per-message overhead bound it. A
    system message without a canary line (a preflight estimate) is bounded as if it had one, as every call
    has (a canary is always as long), so the estimate and the reservations agree."""
    missing = bool(msgs) and msgs[0]["role"] == "system" and CANARY.search(msgs[0]["content"]) is None
    return sum(len(m["content"].encode()) + 8 for m in msgs) + 16 + (_CANARY_BYTES if missing else 0)
