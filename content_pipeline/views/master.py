"""Master from the ledger: the latest version of each slug, a reject never shadowing a success; usage sums."""

from __future__ import annotations

from typing import Any

import polars as pl

from content_pipeline.money import nano_expr, to_usd

# the ledger columns master is chosen from, and where each record's line is
MASTER_FROM = ["id", "slug", "status", "finished_at", "reason", "retryable", "seg", "line"]


def once_per_id(ledger: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept, extra): each record id's first record (the earliest finished, then the first read), and the
    records written again under an id already kept (a writer that lost its lease, a rescue imported twice):
    the views count each id once."""
    if ledger.is_empty() or not ledger["id"].is_duplicated().any():
        return ledger, ledger.clear()
    ordered = ledger.with_row_index("_read").sort(["finished_at", "_read"], nulls_last=True)
    first = ordered.select((pl.int_range(pl.len()).over("id") == 0).alias("_first"))["_first"]
    kept, extra = ordered.filter(first), ordered.filter(~first)  # a record without finished_at is still one
    return kept.sort("_read").drop("_read"), extra.sort("_read").drop("_read")


def master_frames(ledger: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(successes, rejects): one per slug, the latest version; a reject never shadows a success. They
    keep the columns views are built from (id, slug, status, reason, retryable, and seg/line if given)."""
    order = ["slug", "finished_at", "id"]
    ledger = ledger.select(c for c in MASTER_FROM if c in ledger.columns)
    successes = ledger.filter(pl.col("status") == "success").sort(order).unique("slug", keep="last").sort("slug")
    rejects = (
        ledger.filter((pl.col("status") == "reject") & ~pl.col("slug").is_in(successes["slug"].implode()))
        .sort(order)
        .unique("slug", keep="last")
        .sort("slug")
    )
    return successes, rejects


def superseded(ledger: pl.DataFrame) -> pl.DataFrame:
    """slug and input_hash of each slug whose latest final outcome (a success, or a reject not to be tried
    again) is a reject that came after a success: a changed item whose new version failed for good, which
    master keeps at its old success and inventory does not pay for again while the item stays as it is."""
    order = ["slug", "finished_at", "id"]
    final = (pl.col("status") == "success") | ~pl.col("retryable").fill_null(False)
    latest = ledger.filter(final).sort(order).unique("slug", keep="last")
    succeeded = ledger.filter(pl.col("status") == "success").select("slug").unique()
    return (
        latest.filter(pl.col("status") == "reject").join(succeeded, on="slug", how="semi").select("slug", "input_hash")
    )


def earlier(ledger: pl.DataFrame) -> pl.DataFrame:
    """slug, input_hash, seg and id of each earlier success of a slug generated from other inputs than its
    latest (the newest per hash): what an item changed back to is restored from, not paid for again."""
    order = ["slug", "finished_at", "id"]
    succ = ledger.filter(pl.col("status") == "success").sort(order)
    latest = succ.unique("slug", keep="last").select("slug", pl.col("input_hash").alias("latest_hash"))
    older = succ.join(latest, on="slug").filter(pl.col("input_hash") != pl.col("latest_hash"))
    return older.unique(["slug", "input_hash"], keep="last").select("slug", "input_hash", "seg", "id")


def nano_sum(frame: pl.DataFrame) -> int:
    """The frame's cost_usd in nano-dollars, each record rounded, then summed."""
    if frame.is_empty():
        return 0
    return int(frame.select(nano_expr("cost_usd").sum()).item())


def slug_index(frame: pl.DataFrame) -> bytes:
    """The slug index: one slug per line, sorted."""
    if frame.is_empty():
        return b""
    return (str(frame.select(pl.col("slug").sort().str.join("\n")).item()) + "\n").encode()


_SUMMED = ("records", "successes", "rejects", "tokens_in", "tokens_out", "cost_nano")


class UsageSums:
    """Spend and tokens in total, by run and by UTC day, summed a frame at a time: each record's cost is
    rounded to nano-dollars, then summed (the same totals however the ledger is cut into frames)."""

    _FOLD = 64  # partial sums kept before they are folded into one

    def __init__(self) -> None:
        self._partials: list[pl.DataFrame] = []
        self.most_nano = 0  # the most any one record cost

    def add(self, ledger: pl.DataFrame) -> None:
        self._partials.append(_partial(ledger, 1))
        if ledger.height:
            self.most_nano = max(self.most_nano, int(ledger.select(nano_expr("cost_usd").max()).item() or 0))
        if len(self._partials) >= self._FOLD:
            self._partials = [self._summed("run_id", "day")]

    def less(self, extra: pl.DataFrame) -> UsageSums:
        """These sums without the records of `extra` (counted by `add` already): a new UsageSums."""
        return self._with(extra, -1)

    def plus(self, extra: pl.DataFrame) -> UsageSums:
        """These sums with the rows of `extra` too (damaged records kept on the books): a new UsageSums."""
        return self._with(extra, 1)

    def _with(self, extra: pl.DataFrame, sign: int) -> UsageSums:
        out = UsageSums()
        out._partials = [*self._partials, *([_partial(extra, sign)] if extra.height else [])]
        out.most_nano = self.most_nano
        return out

    def _summed(self, *keys: str) -> pl.DataFrame:
        """The partial sums added up by `keys`."""
        if not self._partials:
            schema = {
                "run_id": pl.String,
                "day": pl.String,
                **dict.fromkeys(_SUMMED, pl.Int64),
                "budget_usd": pl.Float64,
            }
            return pl.DataFrame(schema=schema).select(*keys, *_SUMMED, "budget_usd")
        sums = [pl.col(c).sum() for c in _SUMMED]
        return pl.concat(self._partials).group_by(*keys).agg(*sums, pl.col("budget_usd").max()).sort(*keys)

    def by_run(self) -> pl.DataFrame:
        """One row per run: records, successes, rejects, tokens_in, tokens_out, cost_nano, budget_usd."""
        return self._summed("run_id")

    def by_day(self) -> dict[str, dict[str, int]]:
        """records and cost_nano by the UTC day the outcomes finished (`YYYY-MM-DD`)."""
        days = self._summed("day").select("day", "records", "cost_nano")
        return {row.pop("day"): row for row in days.to_dicts()}

    def totals(self) -> dict[str, Any]:
        runs = self.by_run()
        by_run = {row.pop("run_id"): row for row in runs.to_dicts()}
        cost = int(runs["cost_nano"].sum())
        return {
            "records": int(runs["records"].sum()),
            "tokens_in": int(runs["tokens_in"].sum()),
            "tokens_out": int(runs["tokens_out"].sum()),
            "cost_nano": cost,
            "cost_usd": to_usd(cost),
            "by_run": by_run,
            "by_day": self.by_day(),
        }


def _partial(ledger: pl.DataFrame, sign: int) -> pl.DataFrame:
    """The sums of `ledger` by run and day, counted `sign` times (-1: records taken back out of the sums)."""
    budget = pl.col("run_budget_usd").max() if "run_budget_usd" in ledger.columns else pl.lit(None)
    return ledger.group_by("run_id", pl.col("finished_at").str.slice(0, 10).alias("day")).agg(
        records=(pl.col("status") != "held").sum().cast(pl.Int64) * sign,  # (held: a damaged record's booked cost)
        successes=(pl.col("status") == "success").sum().cast(pl.Int64) * sign,
        rejects=(pl.col("status") == "reject").sum().cast(pl.Int64) * sign,
        tokens_in=pl.col("tokens_in").sum().cast(pl.Int64) * sign,
        tokens_out=pl.col("tokens_out").sum().cast(pl.Int64) * sign,
        cost_nano=nano_expr("cost_usd").sum() * sign,
        budget_usd=budget.cast(pl.Float64),
    )
