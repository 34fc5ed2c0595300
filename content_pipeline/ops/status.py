"""Status: what the store says right now, read-only and quick."""

from __future__ import annotations

from typing import Any

import polars as pl

from content_pipeline.claims.pending import outstanding, pending_slugs
from content_pipeline.intake.inventory import Needs, count_needs
from content_pipeline.ledger.inflight import Booked, booked_at_crash, read_intents, recorded_among, unsettled
from content_pipeline.ledger.scan import ledger_segments, stream_ledger
from content_pipeline.money import to_usd
from content_pipeline.store import Store, layout
from content_pipeline.views.snapshot import read_checkpoint_and_usage, views_current, views_cut


def status(store: Store, catalogue_source: str, s3_options: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Counts from the checkpoint, usage and ledger; never writes. Spend includes the calls in flight at a
    crash, booked at their worst case (the provider may have billed them)."""
    checkpoint, usage = read_checkpoint_and_usage(store)
    catalogue, needing, _ = count_needs(catalogue_source, Needs.of(checkpoint, "all", pending_slugs(store)), s3_options)
    current = views_current(store)
    if current:  # the consolidated count is exact: no need to read every ledger segment
        records = int(usage.get("records", 0))
        crashed = booked_at_crash(store, usage)
    else:
        records = sum((store.get(info.key) or b"").count(b"\n") for info in ledger_segments(store))
        crashed = booked_at_crash(store, {"unsettled": unsettled_now(store)})
    return {
        "store": store.url,
        "catalogue": catalogue.valid,
        "catalogue_invalid_rows": len(catalogue.invalid),
        "needs_content": needing,
        "done": len(checkpoint.get("done", {})),
        "rejected": len(checkpoint.get("rejected", {})),
        "queued": len(checkpoint.get("queued", {})),
        "held": len(checkpoint.get("held", {})),
        "ledger_records": records,
        "spend_usd": round(to_usd(int(usage.get("cost_nano", 0)) + crashed.nano), 9),
        "in_flight_at_crash": _crashed(crashed),
        "views_current": current,
        "views_damaged": views_cut(store),
        "batches_outstanding": outstanding(store),
    }


def _crashed(booked: Booked) -> dict[str, Any]:
    by_run = {run: {"calls": calls, "usd": round(to_usd(nano), 9)} for run, (calls, nano) in booked.by_run.items()}
    return {"calls": booked.calls, "usd": round(to_usd(booked.nano), 9), "by_run": by_run}


def unsettled_now(store: Store) -> list[dict[str, Any]]:
    """The unsettled intents as the ledger stands now, for views not yet rebuilt since a crash: only the
    ledger segments of the runs with intents logs are read, for the record ids that settle them."""
    intents = read_intents(store)
    wanted = list(intents.record_ids)
    if not wanted:
        return []
    dirs = tuple(layout.ledger_dir(w.run_id) for w in intents.writers)
    recorded: set[str] = set()

    def settle(frame: pl.DataFrame) -> None:
        recorded.update(recorded_among(frame, wanted))

    stream_ledger(store, settle, segments=[i for i in ledger_segments(store) if i.key.startswith(dirs)])
    return unsettled(intents, recorded)


def status_lines(result: dict[str, Any]) -> list[str]:
    """The status as the terminal shows it: one figure per line, each outstanding batch under its count."""
    width = max(len(k) for k in result)
    lines = []
    for key, value in result.items():
        if key != "batches_outstanding":
            lines.append(f"{key:<{width}}  {value}")
            continue
        lines.append(f"{key:<{width}}  {len(value)}")
        for row in value:
            sent = row["batch_id"] or "not submitted yet"
            what = f"{row['requests']} request(s), {row['age_s'] / 3600:.1f} h old"
            lines.append(f"{'':<{width}}    {row['run_id']}/{row['name']} ({sent}): {what}")
    return lines
