"""A prompt from a template: what the model is told, the item's fields it is given (those the template
shows and the item has), and the input hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from content_pipeline.generation.templates import DEFAULT, PromptTemplate
from content_pipeline.intake.catalogue import Item

SYSTEM_PROMPT = DEFAULT.system  # the default template's, which the fake provider's prompt-leak fault repeats


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


def messages(item: Item, template: PromptTemplate = DEFAULT) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": template.system},
        {"role": "user", "content": template.user.replace("{item}", item_payload(item, template))},
    ]


def input_hash(item: Item, template: PromptTemplate, model: str) -> str:
    """What a success was generated from: the template (id and version), the first model and the fields the
    prompt shows. An item whose hash differs from its success's has changed (generation/changed.py)."""
    return hashlib.sha256(f"{template.key}:{model}:{item_payload(item, template)}".encode()).hexdigest()[:32]


def legacy_input_hash(item: Item, template: PromptTemplate) -> str:
    """The input hash of records written before it covered the model (template and fields only)."""
    return hashlib.sha256(f"{template.key}:{item_payload(item, template)}".encode()).hexdigest()[:32]


def prompt_tokens_upper_bound(msgs: list[dict[str, str]]) -> int:
    """No tokenizer packs fewer than one byte into a token: bytes plus per-message overhead bound it."""
    return sum(len(m["content"].encode()) + 8 for m in msgs) + 16
