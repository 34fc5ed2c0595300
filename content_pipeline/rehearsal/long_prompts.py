"""Prompt templates whose fixed part is over the 1,024 tokens a provider caches from (a production prompt with a
house style guide), made active in a store: what prompt-cache tests and benchmarks run with."""

from __future__ import annotations

from content_pipeline.generation.templates import DEFAULT, read_active, save_template, write_active
from content_pipeline.store import Store

GUIDE = " ".join(f"Style rule {n}: write plainly, in the present tense, without superlatives." for n in range(80))


def activate_long_templates(store: Store, copies: int) -> list[str]:
    """`copies` such templates (`house-0`, ...), each a different prefix, saved and made the active set (equal
    weights); their keys."""
    active = {}
    for n in range(copies):
        house = DEFAULT.model_copy(update={"id": f"house-{n}", "system": f"{DEFAULT.system} House {n}. {GUIDE}"})
        save_template(store, house)
        active[house.key] = 1
    write_active(store, active, read_active(store)[1])
    return list(active)
