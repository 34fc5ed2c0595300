"""replay-failed: the rejects of the last N hours whose cause is transient (and, asked for, the QA and
content-policy ones) claimed again and generated under a budget of their own."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from content_pipeline.ops.outcomes import QA_CAUSES, TRANSIENT, outcomes
from content_pipeline.run.golive import go_live
from content_pipeline.run.report import RunReport
from content_pipeline.run.reporter import Reporter
from content_pipeline.settings import Settings
from content_pipeline.store import Store
from content_pipeline.views.snapshot import read_master


@dataclass(frozen=True)
class ReplayWindow:
    """Which rejects to generate again: the current ones (no later record of the slug) that finished in
    the last `since_hours`, with a transient cause, or any QA cause too with `include_qa`."""

    since_hours: float
    include_qa: bool = False
    now: datetime | None = None

    @property
    def causes(self) -> tuple[str, ...]:
        return (*TRANSIENT, *QA_CAUSES) if self.include_qa else TRANSIENT

    def choose(self, store: Store) -> dict[str, str]:
        """slug -> cause of each reject to replay (the views must be current: the run's inventory made them)."""
        since = (self.now or datetime.now(UTC)) - timedelta(hours=self.since_hours)
        window = outcomes(store, since=since).frame.filter(pl.col("status") == "reject")
        current = window.join(read_master(store, "rejects").select("id"), on="id", how="semi")
        chosen = current.filter(pl.col("cause").is_in(self.causes))
        return dict(chosen.select("slug", "cause").iter_rows())

    def describe(self, chosen: dict[str, str], in_catalogue: int) -> str:
        causes = ", ".join(f"{cause} {n}" for cause, n in sorted(Counter(chosen.values()).items())) or "none"
        kinds = "transient, QA and content-policy" if self.include_qa else "transient"
        gone = len(chosen) - in_catalogue
        missing = f"; {gone} no longer in the catalogue" if gone else ""
        return f"replay-failed: {len(chosen)} {kinds} reject(s) of the last {self.since_hours:g} h ({causes}){missing}"


def replay_failed(settings: Settings, store: Store, reporter: Reporter, window: ReplayWindow) -> RunReport:
    """A go-live run over exactly the window's chosen rejects, under the settings' budget."""
    return go_live(settings, store, reporter, replay=window)
