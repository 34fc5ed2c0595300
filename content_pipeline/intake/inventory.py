"""Inventory: which catalogue items need content (not done, not permanently rejected, in scope)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from content_pipeline.intake.catalogue import Catalogue, Item, load_catalogue
from content_pipeline.intake.items import write_items
from content_pipeline.store import Store, layout
from content_pipeline.views.checkpoint import Checkpoint, decided
from content_pipeline.views.consolidate import current_checkpoint


@dataclass
class Inventory:
    """What the catalogue holds, what of it needs content, and what the views said of the rest."""

    catalogue: Catalogue
    needs: list[Item]
    done: int
    rejected: int
    repaired: list[str] = field(default_factory=list)  # damaged views found and rebuilt from the ledger


def needs_content(items: list[Item], checkpoint: Checkpoint, scope: str) -> list[Item]:
    """The items in scope that no run has decided for good."""
    final = decided(checkpoint)
    return [i for i in items if i.slug not in final and (scope == "all" or i.promo)]


def take_inventory(
    store: Store, catalogue_source: str, scope: str, run_id: str, s3_options: dict[str, str | None] | None = None
) -> Inventory:
    """Read and validate the catalogue, and write the run's needs-content and invalid-row reports."""
    catalogue = load_catalogue(catalogue_source, s3_options)
    repaired: list[str] = []
    checkpoint = current_checkpoint(store, repaired)
    needs = needs_content(catalogue.items, checkpoint, scope)
    if not store.read_only:
        write_items(store, layout.run_key(run_id, layout.NEEDS_CONTENT), needs)
        store.put(
            layout.run_key(run_id, layout.INVALID_ROWS),
            "".join(
                json.dumps({"row": r.row, "slug": r.slug, "reason": r.reason}) + "\n" for r in catalogue.invalid
            ).encode(),
        )
    slugs = {i.slug for i in catalogue.items}
    done = sum(1 for s in checkpoint.get("done", {}) if s in slugs)
    rejected = sum(1 for s in checkpoint.get("rejected", {}) if s in slugs)
    return Inventory(catalogue, needs, done, rejected, repaired)
