"""Inventory: which catalogue items need content (not done, not permanently rejected, or changed since their
success; in scope)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from content_pipeline.claims.pending import pending_slugs
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
    changed: frozenset[str] = frozenset()  # done items whose inputs changed since their success


def needs_content(
    items: list[Item],
    checkpoint: Checkpoint,
    scope: str,
    changed: Collection[str] = (),
    pending: Collection[str] = (),
) -> list[Item]:
    """The items in scope that no run has decided for good, and the `changed` ones (done, but generated from
    other inputs than they have now); scope "changed": those alone. Items `pending` in a batch not collected
    yet are left out (collect settles them)."""
    if scope == "changed":
        return [i for i in items if i.slug in changed and i.slug not in pending]
    final = decided(checkpoint, changed) | set(pending)
    return [i for i in items if i.slug not in final and (scope == "all" or i.promo)]


def take_inventory(
    store: Store,
    catalogue_source: str,
    scope: str,
    run_id: str,
    s3_options: dict[str, str | None] | None = None,
    changed: Callable[[list[Item]], Collection[str]] | None = None,
) -> Inventory:
    """Read and validate the catalogue, and write the run's needs-content and invalid-row reports.
    `changed`: which of the done items changed since their success (they need content again)."""
    catalogue = load_catalogue(catalogue_source, s3_options)
    repaired: list[str] = []
    checkpoint = current_checkpoint(store, repaired)
    done = checkpoint.get("done", {})
    again = frozenset(changed([i for i in catalogue.items if i.slug in done])) if changed else frozenset()
    needs = needs_content(catalogue.items, checkpoint, scope, again, pending_slugs(store))
    if not store.read_only:
        write_items(store, layout.run_key(run_id, layout.NEEDS_CONTENT), needs)
        store.put(
            layout.run_key(run_id, layout.INVALID_ROWS),
            "".join(
                json.dumps({"row": r.row, "slug": r.slug, "reason": r.reason}) + "\n" for r in catalogue.invalid
            ).encode(),
        )
    slugs = {i.slug for i in catalogue.items}
    done_count = sum(1 for s in done if s in slugs)
    rejected = sum(1 for s in checkpoint.get("rejected", {}) if s in slugs)
    return Inventory(catalogue, needs, done_count, rejected, repaired, again)
