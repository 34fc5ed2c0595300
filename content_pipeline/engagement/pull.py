"""`engagement pull` and `engagement import`: figures fetched from each source, or read from a file, matched to
the published posts, and appended to the engagement log once (a re-pull appends nothing)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from content_pipeline.engagement.importing import read_import
from content_pipeline.engagement.log import append_days, read_log
from content_pipeline.engagement.published import published
from content_pipeline.engagement.source import Source
from content_pipeline.store import Store


def pull_sources(store: Store, sources: list[Source], since_days: int, today: date | None = None) -> list[str]:
    """Each source's figures for the published posts over the last `since_days` days (today included), one
    line per source: new, revised and unchanged post-days."""
    posts = published(store)
    if not posts.by_path:
        return ["no published post has a link yet: nothing to pull"]
    last = today or datetime.now(UTC).date()
    first = last - timedelta(days=since_days)
    log = read_log(store)
    return [append_days(store, s.name, s.pull(posts.by_path, first, last), log).line(s.name) for s in sources]


def import_file(store: Store, path: str, source: str = "import") -> list[str]:
    """The file's rows for published posts appended, one line per source the rows name; rows naming no post
    of ours are counted and skipped. A bad row refuses the whole file, naming it, and appends nothing."""
    days, skipped = read_import(path, published(store), source)
    by_source: dict[str, list] = {}
    for day in days:
        by_source.setdefault(day.source, []).append(day)
    log = read_log(store)
    lines = [append_days(store, name, rows, log).line(name) for name, rows in sorted(by_source.items())]
    if skipped:
        lines.append(f"{skipped} row(s) name no post the pipeline published: skipped")
    return lines or ["no row named a published post: nothing imported"]
