"""Progress: the work that remains, the share done, the rate of the last hour and the time to finish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from content_pipeline.intake.inventory import Needs, count_needs
from content_pipeline.ops.outcomes import outcomes
from content_pipeline.run.heartbeat import duration
from content_pipeline.store import Store
from content_pipeline.views.consolidate import current_checkpoint


def progress(
    store: Store, catalogue_source: str, s3_options: dict[str, str | None] | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Items in the catalogue, decided and remaining, the share done, items decided in the last hour and
    the time to finish at that rate (None when nothing was decided in the hour)."""
    moment = now or datetime.now(UTC)
    checkpoint = current_checkpoint(store)
    catalogue, remaining, finished = count_needs(catalogue_source, Needs.of(checkpoint, "all"), s3_options)
    last_hour = outcomes(store, since=moment - timedelta(hours=1), until=moment).frame
    rate = last_hour["slug"].n_unique() if last_hour.height else 0
    eta_s = remaining / rate * 3600 if rate and remaining else (0.0 if not remaining else None)
    return {
        "catalogue": catalogue.valid,
        "decided": finished,
        "remaining": remaining,
        "done_share": round(finished / catalogue.valid, 4) if catalogue.valid else 1.0,
        "rate_per_hour": rate,
        "eta_s": None if eta_s is None else round(eta_s, 1),
    }


def progress_line(figures: dict[str, Any]) -> str:
    eta = figures["eta_s"]
    finish = "done" if not figures["remaining"] else ("no rate yet" if eta is None else f"about {duration(eta)} to go")
    return (
        f"progress: {figures['decided']} of {figures['catalogue']} item(s) decided ({figures['done_share']:.1%}), "
        f"{figures['remaining']} remaining; {figures['rate_per_hour']} decided in the last hour; {finish}"
    )
