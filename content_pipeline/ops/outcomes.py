"""The ledger's outcomes in a window of time, with what operations read of them: model, template, calls
and the cause of each reject (transient, provider, QA, content policy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from content_pipeline.ledger.records import SCHEMA
from content_pipeline.ledger.scan import LedgerScan, stream_ledger
from content_pipeline.ledger.spend import stamp
from content_pipeline.store import Store
from content_pipeline.views.master import once_per_id

CALL = pl.Struct({"model": pl.String(), "tokens_in": pl.Int64(), "tokens_out": pl.Int64(), "cost_usd": pl.Float64()})
OPS_SCHEMA: dict[str, pl.DataType] = {
    **SCHEMA,
    "model": pl.String(),
    "prompt_template": pl.String(),
    "prompt_version": pl.String(),
    "escalated": pl.Boolean(),
    "started_at": pl.String(),
    "calls": pl.List(CALL),
}
# Causes a later run may well not meet: the rejects `replay-failed` claims again without --include-qa.
TRANSIENT = ("rate_limit", "timeout", "server_error", "connection", "budget", "quota")
PROVIDER = (*TRANSIENT, "provider")  # a failure for a provider or transient cause (health's failure rate)
QA_CAUSES = ("qa", "content_policy", "item_budget")


def cause() -> pl.Expr:
    """The cause of each reject (null for a success): one of TRANSIENT, `provider` (an error answer not
    worth trying again), `content_policy` (a refusal or the provider's filter), `item_budget`, or `qa`."""
    reason, error = pl.col("reason"), pl.col("error").fill_null("")
    provider = (
        pl.when(error.str.contains("rate limited"))
        .then(pl.lit("rate_limit"))
        .when(error.str.contains("timed out"))
        .then(pl.lit("timeout"))
        .when(error.str.contains("connection to"))
        .then(pl.lit("connection"))
        .when(pl.col("retryable"))
        .then(pl.lit("server_error"))
        .otherwise(pl.lit("provider"))
    )
    return (
        pl.when(pl.col("status") == "success")
        .then(pl.lit(None, pl.String))
        .when(error.str.contains("insufficient_quota"))
        .then(pl.lit("quota"))
        .when(reason == "budget")
        .then(pl.lit("budget"))
        .when(reason == "provider_error")
        .then(provider)
        .when(reason.is_in(["refusal", "content_filter"]))
        .then(pl.lit("content_policy"))
        .when(reason == "item_budget")
        .then(pl.lit("item_budget"))
        .otherwise(pl.lit("qa"))
        .alias("cause")
    )


@dataclass
class Outcomes:
    """The outcomes that finished in a window (OPS_SCHEMA columns, `cause`, and `finished` as a UTC
    datetime), and what the scan of the ledger found."""

    frame: pl.DataFrame
    scan: LedgerScan


def outcomes(store: Store, since: datetime | None = None, until: datetime | None = None) -> Outcomes:
    """Every outcome that finished at or after `since` and before `until` (either open when None), in one
    streaming read of the ledger; only the window's rows are kept."""
    frames: list[pl.DataFrame] = []
    start, end = (stamp(since) if since else None), (stamp(until) if until else None)

    def keep(frame: pl.DataFrame) -> None:
        if start is not None:
            frame = frame.filter(pl.col("finished_at") >= start)
        if end is not None:
            frame = frame.filter(pl.col("finished_at") < end)
        if frame.height:
            frames.append(frame)

    scan = stream_ledger(store, keep, schema=OPS_SCHEMA, cached=False)
    empty = pl.DataFrame(schema={**OPS_SCHEMA, "seg": pl.UInt32, "line": pl.UInt32})
    frame = once_per_id(pl.concat(frames))[0] if frames else empty  # a record written twice counts once
    finished = pl.col("finished_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False)
    return Outcomes(frame.with_columns(cause(), finished=finished), scan)
