"""`engagement import FILE`: figures from any other source (GA4 or Matomo exports, social insights) as a CSV,
JSONL or Parquet table, one row per post and day; refused whole, naming the row, when any row is bad."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

from pydantic import ValidationError

from content_pipeline.engagement.days import METRICS, SOURCE, PostDay
from content_pipeline.engagement.published import Published
from content_pipeline.errors import BadInputError
from content_pipeline.intake.source import raw_rows

KEYS = ("slug", "path", "url", "post_id")  # a row names its post by one of these
COLUMNS = {"source", "day", "final", *KEYS, *METRICS}
TRUE, FALSE = {"true", "1", "yes", ""}, {"false", "0", "no"}


def _value(raw: Any) -> str:
    return "" if raw is None else str(raw).strip()


def _row(where: str, row: dict[str, Any], posts: Published, source: str) -> PostDay | None:
    """The row as a post-day (None when it names no post the pipeline published); BadInputError naming it."""
    unknown = sorted(set(row) - COLUMNS)
    if unknown:
        raise BadInputError(f"{where}: unknown column(s) {', '.join(unknown)}; known: {', '.join(sorted(COLUMNS))}")
    named = {k: _value(row.get(k)) for k in KEYS if _value(row.get(k))}
    if len(named) != 1:
        raise BadInputError(f"{where}: name the post by exactly one of {', '.join(KEYS)}")
    slug = posts.find(**named)
    if slug is None:
        return None
    final = _value(row.get("final")).lower()
    if final not in TRUE | FALSE:
        raise BadInputError(f"{where}: final {row.get('final')!r} is not true or false")
    try:
        metrics = {m: float(_value(row[m])) for m in METRICS if _value(row.get(m))}
        if not metrics or not all(math.isfinite(v) for v in metrics.values()):
            raise ValueError("no metric, or one that is not a number")
        day = date.fromisoformat(_value(row.get("day")))
        return PostDay(
            source=_value(row.get("source")) or source, slug=slug, day=day, metrics=metrics, final=final in TRUE
        )
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise BadInputError(f"{where}: {first}") from None


def read_import(path: str, posts: Published, source: str = "import") -> tuple[list[PostDay], int]:
    """The file's post-days and how many rows named posts the pipeline did not publish (skipped); the whole
    file is refused, naming the first bad row, when any row is bad."""
    if not re.match(SOURCE, source):
        raise BadInputError(f"engagement import: source {source!r}: use 1-40 of [a-z0-9-]")
    days, skipped = [], 0
    for number, row, _ in raw_rows(path, what="engagement import"):
        where = f"engagement import {path}: row {number}"
        if isinstance(row, str):
            raise BadInputError(f"{where}: {row}")
        day = _row(where, row, posts, source)
        if day is None:
            skipped += 1
        else:
            days.append(day)
    return days, skipped
