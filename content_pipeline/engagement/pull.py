"""`engagement pull` and `engagement import`: figures fetched from each source, or read from a file, matched to
the published posts, and appended to the engagement log once (a re-pull appends nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from content_pipeline.engagement.importing import read_import
from content_pipeline.engagement.log import append_days, read_log
from content_pipeline.engagement.published import published
from content_pipeline.engagement.source import EngagementSourceError, Source
from content_pipeline.store import Store


@dataclass
class Pulled:
    """One line per source (new, revised and unchanged post-days, or why it failed), and the sources that failed."""

    lines: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def pull_sources(store: Store, sources: list[Source], since_days: int, today: date | None = None) -> Pulled:
    """Each source's figures for the published posts over the last `since_days` days (today included); a
    source that fails is named with its one line, and the others are pulled all the same."""
    posts = published(store)
    if not posts.by_path:
        return Pulled(["no published post has a link yet: nothing to pull"])
    last = today or datetime.now(UTC).date()
    first = last - timedelta(days=since_days)
    log, pulled = read_log(store), Pulled()
    for source in sources:
        try:
            days = source.pull(posts.by_path, first, last)
        except EngagementSourceError as exc:
            pulled.lines.append(f"{source.name}: failed: {exc}")
            pulled.failed.append(source.name)
            continue
        pulled.lines.append(append_days(store, source.name, days, log).line(source.name))
    return pulled


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
