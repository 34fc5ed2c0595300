"""Plausible Stats API v2 as an engagement source: each published post's visitors, pageviews, time on page and
scroll depth per day (`event:page` x `time:day`), paged, with 429s and 5xxs retried and backed off."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import httpx2

from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.source import EngagementSourceError, call

NAME = "plausible"
METRICS = ["visitors", "pageviews", "time_on_page", "scroll_depth"]
PATHS_PER_QUERY = 200  # pages named in one query's filter


class PlausibleSource:
    """One site on a Plausible server (plausible.io or self-hosted). A day is final once it has ended (UTC):
    Plausible counts as events arrive, so only today's figures may still grow."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        site_id: str,
        *,
        page_size: int = 1000,
        retries: int = 4,
        timeout_s: float = 30,
        name: str = NAME,
    ) -> None:
        self.name = name  # what its figures are logged under: the source, or the block that configures it
        if not api_key or not site_id:
            raise EngagementSourceError("plausible: needs an API key and a site id (the PlausibleSite block)")
        self.url = base_url.rstrip("/") + "/api/v2/query"
        self.site_id, self.page_size, self.retries = site_id, page_size, retries
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._client = httpx2.Client(timeout=timeout_s)

    def pull(self, paths: Mapping[str, str], first: date, last: date) -> list[PostDay]:
        """The figures of every page in `paths` (path -> the post's slug) for each day from `first` to `last`."""
        today = datetime.now(UTC).date()
        out: list[PostDay] = []
        ordered = sorted(paths)
        for start in range(0, len(ordered), PATHS_PER_QUERY):
            for path, day, figures in self._query(ordered[start : start + PATHS_PER_QUERY], first, last):
                if path in paths:
                    out.append(PostDay(source=self.name, slug=paths[path], day=day, metrics=figures, final=day < today))
        return out

    def _query(self, paths: list[str], first: date, last: date) -> list[tuple[str, date, dict[str, float]]]:
        rows: list[tuple[str, date, dict[str, float]]] = []
        offset, total = 0, None
        while total is None or offset < total:
            body = self._page(paths, first, last, offset)
            total = int(body.get("meta", {}).get("total_rows", 0))
            results = body.get("results", [])
            for row in results:
                path, day = row["dimensions"]
                figures = {m: float(v) for m, v in zip(METRICS, row["metrics"], strict=True) if v is not None}
                rows.append((str(path), date.fromisoformat(str(day)[:10]), figures))
            if not results:
                break
            offset += len(results)
        return rows

    def _page(self, paths: list[str], first: date, last: date, offset: int) -> dict[str, Any]:
        query = {
            "site_id": self.site_id,
            "metrics": METRICS,
            "date_range": [first.isoformat(), last.isoformat()],
            "dimensions": ["event:page", "time:day"],
            "filters": [["is", "event:page", paths]],
            "include": {"total_rows": True},
            "pagination": {"limit": self.page_size, "offset": offset},
        }
        where = f"plausible ({self.site_id})"
        response = call(
            self._client, where, self.retries, "POST", self.url, "/api/v2/query", json=query, headers=self._headers
        )
        code = response.status_code
        if code in (401, 403):
            raise EngagementSourceError(
                f"{where}: {code}: the API key or site id was refused (the PlausibleSite block)"
            )
        try:
            body = response.json()
        except ValueError:
            raise EngagementSourceError(f"{where}: {code}: the answer is not JSON") from None
        if code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise EngagementSourceError(f"{where}: {code}: {error or 'unexpected answer'}")
        return body
