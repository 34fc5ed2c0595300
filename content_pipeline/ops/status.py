"""Status: what the store says right now, read-only and quick."""

from __future__ import annotations

from typing import Any

from content_pipeline.intake.catalogue import load_catalogue
from content_pipeline.intake.inventory import needs_content
from content_pipeline.ledger.scan import ledger_segments
from content_pipeline.money import to_usd
from content_pipeline.store import Store
from content_pipeline.views.snapshot import read_checkpoint_and_usage, views_current, views_cut


def status(store: Store, catalogue_source: str, s3_options: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Counts from the checkpoint, usage and ledger; never writes."""
    catalogue = load_catalogue(catalogue_source, s3_options)
    checkpoint, usage = read_checkpoint_and_usage(store)
    current = views_current(store)
    if current:  # the consolidated count is exact: no need to read every ledger segment
        records = int(usage.get("records", 0))
    else:
        records = sum((store.get(info.key) or b"").count(b"\n") for info in ledger_segments(store))
    return {
        "store": store.url,
        "catalogue": len(catalogue.items),
        "catalogue_invalid_rows": len(catalogue.invalid),
        "needs_content": len(needs_content(catalogue.items, checkpoint, "all")),
        "done": len(checkpoint.get("done", {})),
        "rejected": len(checkpoint.get("rejected", {})),
        "queued": len(checkpoint.get("queued", {})),
        "held": len(checkpoint.get("held", {})),
        "ledger_records": records,
        "spend_usd": round(to_usd(usage.get("cost_nano", 0)), 9),
        "views_current": current,
        "views_damaged": views_cut(store),
    }
