"""One post's engagement on one day, from one source: the metrics it reports and whether the day is final."""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from content_pipeline.ledger.checksum import sign

# what a source may report of a post's day; each optional (a source reports the ones it has)
METRICS: dict[str, str] = {
    "visitors": "unique visitors of the post's page that day",
    "pageviews": "views of the post's page",
    "time_on_page": "mean seconds on the page",
    "scroll_depth": "mean share of the page scrolled, 0-100",
    "clicks": "clicks from search results to the post (Search Console)",
    "impressions": "times the post was shown in search results (Search Console)",
    "position": "mean position in search results (Search Console)",
    "shares": "shares or goal completions the source counts",
}
SOURCE = r"^[a-z0-9][a-z0-9-]{0,39}$"


class PostDay(BaseModel):
    """One source's figures for one post on one day. `final`: the source will not change them any more (a
    day past its lag); a day that is not final may be revised by a later pull."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Annotated[str, Field(pattern=SOURCE, description="where the figures come from")]
    slug: Annotated[str, Field(min_length=1, max_length=200, description="the post's item slug")]
    day: date
    metrics: dict[str, float]
    final: bool = True

    @field_validator("metrics")
    @classmethod
    def _known(cls, metrics: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(metrics) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
        bad = sorted(name for name, value in metrics.items() if not math.isfinite(value) or value < 0)
        if bad:
            raise ValueError(f"metric(s) {', '.join(bad)} must be finite and not negative")
        return dict(sorted(metrics.items()))

    @property
    def key(self) -> tuple[str, str, str]:
        """What a revision replaces: the same source, post and day."""
        return self.source, self.slug, self.day.isoformat()

    def same_figures(self, other: PostDay) -> bool:
        return self.metrics == other.metrics and self.final == other.final

    def line(self, pulled_at: str) -> bytes:
        """The day as a signed log line, stamped with when it was pulled."""
        body: dict[str, Any] = {**self.model_dump(mode="json"), "pulled_at": pulled_at}
        return sign(json.dumps(body, separators=(",", ":")).encode())
