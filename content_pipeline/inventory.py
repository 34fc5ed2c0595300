"""Inventory: which catalogue items need content (not done, not permanently rejected, in scope)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from content_pipeline import layout
from content_pipeline.catalogue import Catalogue, Item, load_catalogue
from content_pipeline.errors import BadInputError
from content_pipeline.store import Store
from content_pipeline.views import current_checkpoint


@dataclass
class Inventory:
    catalogue: Catalogue
    needs: list[Item]
    done: int
    rejected: int


def needs_content(items: list[Item], checkpoint: dict, scope: str) -> list[Item]:
    done = checkpoint.get("done", {})
    final = {slug for slug, r in checkpoint.get("rejected", {}).items() if not r.get("retryable")}
    return [i for i in items if i.slug not in done and i.slug not in final and (scope == "all" or i.promo)]


def take_inventory(
    store: Store, catalogue_source: str, scope: str, run_id: str, s3_options: dict[str, str | None] | None = None
) -> Inventory:
    """Read and validate the catalogue, and write the run's needs-content and invalid-row reports."""
    catalogue = load_catalogue(catalogue_source, s3_options)
    checkpoint = current_checkpoint(store)
    needs = needs_content(catalogue.items, checkpoint, scope)
    if not store.read_only:
        store.put(
            layout.run_key(run_id, "needs-content.jsonl"), "".join(i.model_dump_json() + "\n" for i in needs).encode()
        )
        store.put(
            layout.run_key(run_id, "invalid-rows.jsonl"),
            "".join(
                json.dumps({"row": r.row, "slug": r.slug, "reason": r.reason}) + "\n" for r in catalogue.invalid
            ).encode(),
        )
    slugs = {i.slug for i in catalogue.items}
    done = sum(1 for s in checkpoint.get("done", {}) if s in slugs)
    rejected = sum(1 for s in checkpoint.get("rejected", {}) if s in slugs)
    return Inventory(catalogue, needs, done, rejected)


def read_items(store: Store, key: str) -> list[Item] | None:
    """Items of a run artifact, or None when it does not exist; bad lines are skipped by preflight."""
    data = store.get(key)
    if data is None:
        return None
    try:
        return [Item.model_validate_json(line) for line in data.decode().splitlines() if line.strip()]
    except (ValueError, UnicodeDecodeError):
        raise BadInputError(f"{key} is damaged: run the stage that writes it again") from None
