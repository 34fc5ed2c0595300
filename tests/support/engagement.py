"""Planted history for the engagement tests: posts a publish run put live on given days (signed attempt-log
lines, as publish writes them, dated in the past), the template that wrote each (master successes through a
real consolidate), and figures per post and day in the engagement log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.log import append_days
from content_pipeline.ledger.checksum import sign
from content_pipeline.store import Store, layout
from content_pipeline.views.consolidate import consolidate
from tests.support.helpers import record, write_ledger

SITE = "https://shop.example"
TODAY = datetime.now(UTC).date()


def link(slug: str) -> str:
    return f"{SITE}/{slug}/"


def publish_on(
    store: Store, live: Mapping[str, date], hour: int = 9, categories: Mapping[str, str] | None = None
) -> None:
    """The attempt log of publish runs that put each post live on its day at `hour` UTC (a WordPress post each,
    its intent's payload naming its category in `categories`, when it has one there)."""
    lines = []
    for n, (slug, day) in enumerate(sorted(live.items())):
        at = datetime.combine(day, time(hour, n % 60), UTC).isoformat(timespec="milliseconds")
        category = [categories[slug]] if categories and slug in categories else []
        payload = {"slug": slug, "title": slug, "categories": category, "tags": []}
        intent = {"kind": "intent", "run_id": "planted-publish", "target": "wordpress", "slug": slug}
        intent |= {"key": f"k-{slug}", "content_hash": f"h-{slug}", "payload": payload, "at": at}
        lines.append(sign(json.dumps(intent, separators=(",", ":")).encode()))
        body = {
            "kind": "outcome",
            "run_id": "planted-publish",
            "target": "wordpress",
            "slug": slug,
            "key": f"k-{slug}",
            "live": True,
            "result": "created",
            "content_hash": f"h-{slug}",
            "post_id": str(1000 + n),
            "link": link(slug),
            "at": at,
        }
        lines.append(sign(json.dumps(body, separators=(",", ":")).encode()))
    store.put(layout.attempts_log("planted-publish", "planted"), b"".join(lines))


def written_by(store: Store, templates: Mapping[str, str]) -> None:
    """Master successes naming the template version ("id:version") that wrote each slug."""
    records = []
    for slug, key in sorted(templates.items()):
        template_id, version = key.split(":")
        records.append(record(slug, prompt_template=template_id, prompt_version=version))
    write_ledger(store, records, segment="planted.jsonl")
    consolidate(store)


def figures(
    store: Store, source: str, per_day: Mapping[tuple[str, date], Mapping[str, float]], final_before: date = TODAY
) -> None:
    """Figures per (slug, day) appended to the log under `source`; a day on or after `final_before` not final."""
    days = [
        PostDay(source=source, slug=slug, day=day, metrics=dict(metrics), final=day < final_before)
        for (slug, day), metrics in per_day.items()
    ]
    append_days(store, source, days)


def steady_then(
    slugs: list[str], visitors: float, newest: date, drop: float, days: int = 8
) -> dict[tuple[str, date], dict[str, float]]:
    """`visitors` a day for each slug over `days` days to `newest`, the newest day down by `drop` (0.4: 40%)."""
    out = {}
    for back in range(days):
        day = newest - timedelta(days=back)
        for slug in slugs:
            out[(slug, day)] = {"visitors": visitors * (1 - drop) if back == 0 else visitors, "pageviews": visitors}
    return out
