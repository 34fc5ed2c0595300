"""A loopback Plausible Stats API v2 (`POST /api/v2/query`) to rehearse an engagement pull: planted per page and
day figures, the documented request checks (a malformed query gets the real API's 400 `{"error": ...}`), bearer
keys, pagination with `meta.total_rows`, and its hourly rate limit answered with 429 and Retry-After."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from content_pipeline.rehearsal.loopback import Loopback, QuietHandler, reply

METRICS = {"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration", "events"}
PAGE_METRICS = {"time_on_page", "scroll_depth"}  # valid only with event:page as a dimension or filter
DIMENSIONS = {"event:page", "time:day"}  # the ones rehearsed (the real API has more)
SHORTCUTS = {"day", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all"}
OPERATORS = {"is", "is_not", "contains", "contains_not"}
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass
class PlausibleSite:
    """What the rehearsal serves: one site, the key it accepts, and each page's figures per day."""

    site_id: str
    key: str
    pages: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (path, day) -> metrics
    throttle: int = 0  # the next this many requests are answered 429 (its hourly limit reached)
    retry_after_s: float = 1.0
    requests: list[dict[str, Any]] = field(default_factory=list)


class QueryError(ValueError):
    """A query the real API refuses with 400 and this message."""


def _check(query: Any) -> None:
    if not isinstance(query, dict):
        raise QueryError("#: Type mismatch. Expected Object but got something else.")
    for required in ("site_id", "metrics", "date_range"):
        if required not in query:
            raise QueryError(f"#: Required property {required} was not present.")
    metrics, dims = query["metrics"], query.get("dimensions", [])
    if not isinstance(metrics, list) or not metrics:
        raise QueryError("#/metrics: Expected a non-empty list of metrics.")
    for i, metric in enumerate(metrics):
        if metric not in METRICS | PAGE_METRICS:
            raise QueryError(f"#/metrics/{i}: Invalid metric {json.dumps(metric)}")
    if not isinstance(dims, list) or any(d not in DIMENSIONS for d in dims):
        raise QueryError(f"#/dimensions: Invalid dimensions {json.dumps(dims)} (rehearsed: event:page, time:day)")
    filters = query.get("filters", [])
    if not isinstance(filters, list) or not all(_filter_ok(f) for f in filters):
        raise QueryError(f"#/filters: Invalid filters {json.dumps(filters)}")
    paged = "event:page" in dims or any(f[1] == "event:page" for f in filters)
    for metric in sorted(set(metrics) & PAGE_METRICS):
        if not paged:
            raise QueryError(f"Metric `{metric}` can only be queried with event:page filters or dimensions.")
    _date_range(query["date_range"])
    page = query.get("pagination", {})
    if not isinstance(page, dict) or set(page) - {"limit", "offset"}:
        raise QueryError("#/pagination: Invalid pagination")
    limit, offset = page.get("limit", 10000), page.get("offset", 0)
    if not isinstance(limit, int) or not 1 <= limit <= 10000 or not isinstance(offset, int) or offset < 0:
        raise QueryError("#/pagination: Invalid pagination")


def _filter_ok(clause: Any) -> bool:
    return (
        isinstance(clause, list)
        and len(clause) == 3
        and clause[0] in OPERATORS
        and isinstance(clause[1], str)
        and isinstance(clause[2], list)
        and all(isinstance(v, str) for v in clause[2])
    )


def _date_range(value: Any) -> tuple[str, str] | None:
    """The (first, last) day of an explicit range; None for a shortcut (the rehearsal serves every day)."""
    if isinstance(value, str) and value in SHORTCUTS:
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and DAY.match(v) for v in value):
        first, last = value[0][:10], value[1][:10]
        try:
            if date.fromisoformat(first) <= date.fromisoformat(last):
                return first, last
        except ValueError:
            pass
    raise QueryError(f"#/date_range: Invalid date range {json.dumps(value)}")


def _matches(path: str, clause: list[Any]) -> bool:
    op, _, values = clause
    hit = path in values if op in ("is", "is_not") else any(v in path for v in values)
    return hit if op in ("is", "contains") else not hit


def answer(site: PlausibleSite, query: dict[str, Any]) -> dict[str, Any]:
    """The response to a checked query: one row per (dimensions) group, time ascending then page."""
    span = _date_range(query["date_range"])
    dims, metrics = query.get("dimensions", []), query["metrics"]
    rows: dict[tuple[str, ...], list[dict[str, float]]] = {}
    for (path, day), figures in sorted(site.pages.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if span is not None and not span[0] <= day <= span[1]:
            continue
        if not all(_matches(path, f) for f in query.get("filters", []) if f[1] == "event:page"):
            continue
        key = tuple(path if d == "event:page" else day for d in dims)
        rows.setdefault(key, []).append(figures)
    results = []
    for key, groups in rows.items():
        values = []
        for metric in metrics:
            found = [g[metric] for g in groups if metric in g]
            summed = metric not in PAGE_METRICS
            values.append((sum(found) if summed else sum(found) / len(found)) if found else None)
        results.append({"metrics": values, "dimensions": list(key)})
    page = query.get("pagination", {})
    offset, limit = page.get("offset", 0), page.get("limit", 10000)
    meta = {"total_rows": len(results)} if query.get("include", {}).get("total_rows") else {}
    return {"results": results[offset : offset + limit], "meta": meta, "query": query}


class _Handler(QuietHandler):
    site: PlausibleSite
    lock: threading.Lock

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/api/v2/query":
            return reply(self, 404, {"error": "Not found"})
        try:
            query = json.loads(raw)
        except ValueError:
            return reply(self, 400, {"error": "Invalid request body: not JSON"})
        with self.lock:
            self.site.requests.append({"authorization": self.headers.get("Authorization"), "body": query})
            throttled = self.site.throttle > 0
            self.site.throttle -= throttled
        if self.headers.get("Authorization") != f"Bearer {self.site.key}" or (
            isinstance(query, dict) and query.get("site_id") != self.site.site_id
        ):
            return reply(
                self, 401, {"error": "Invalid API key or site ID. Please make sure you're using a valid API key."}
            )
        if throttled:
            retry = {"Retry-After": f"{self.site.retry_after_s:g}"}
            return reply(
                self, 429, {"error": "Too many API requests. Your API key is limited to 600 requests per hour."}, retry
            )
        try:
            _check(query)
        except QueryError as exc:
            return reply(self, 400, {"error": str(exc)})
        return reply(self, 200, answer(self.site, query))


class PlausibleRehearsal(Loopback):
    """`with PlausibleRehearsal(site) as url:` serves `site` on a free loopback port until the block ends."""

    def __init__(self, site: PlausibleSite) -> None:
        self.site = site
        super().__init__(type("Handler", (_Handler,), {"site": site, "lock": threading.Lock()}), "plausible-rehearsal")
