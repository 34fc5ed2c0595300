"""The engagement log on both backends: a re-pull appends nothing, late data revises a day once and is never
added to it, a damaged line is named and kept aside, and bad rows are refused with one line."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.log import append_days, read_log
from content_pipeline.errors import BadInputError
from content_pipeline.store import Store, layout


def day(slug: str, on: str, final: bool = True, **metrics: float) -> PostDay:
    return PostDay(source="plausible", slug=slug, day=date.fromisoformat(on), metrics=metrics, final=final)


def stored(store: Store) -> dict[str, bytes]:
    return {i.key: store.get(i.key) or b"" for i in store.list(layout.ENGAGEMENT_PREFIX)}


def test_a_re_pull_appends_nothing(store: Store) -> None:
    pull = [day("a", "2026-12-01", visitors=10, pageviews=14), day("b", "2026-12-01", visitors=3)]
    first = append_days(store, "plausible", pull)
    before = stored(store)
    again = append_days(store, "plausible", pull)
    assert (first.new, first.revised, first.unchanged) == (2, 0, 0)
    assert (again.new, again.revised, again.unchanged) == (0, 0, 2)
    assert stored(store) == before
    assert again.line("plausible") == "plausible: 0 new post-day(s), 0 revised, 2 unchanged"


def test_late_data_revises_a_day_once_and_never_adds_to_it(store: Store) -> None:
    append_days(store, "plausible", [day("a", "2026-12-01", final=False, visitors=10)])
    late = append_days(store, "plausible", [day("a", "2026-12-01", final=True, visitors=14)])
    again = append_days(store, "plausible", [day("a", "2026-12-01", final=True, visitors=14)])
    assert (late.new, late.revised) == (0, 1) and (again.revised, again.unchanged) == (0, 1)
    [latest] = read_log(store).days()
    assert latest.metrics == {"visitors": 14} and latest.final
    lines = b"".join(stored(store).values()).splitlines()
    assert len(lines) == 2  # the first pull and its one revision


def test_a_damaged_line_is_named_kept_aside_and_not_trusted(store: Store) -> None:
    append_days(store, "plausible", [day("a", "2026-12-01", visitors=10), day("b", "2026-12-01", visitors=5)])
    [(key, data)] = stored(store).items()
    store.put(key, data.replace(b'"visitors":10.0', b'"visitors":99.0', 1))
    log = read_log(store)
    assert [d.slug for d in log.days()] == ["b"]
    assert log.damaged == [f"{key}: line 1: fails its checksum (changed since it was written)"]
    assert store.get(layout.damaged_record(key, 0)) is not None
    assert append_days(store, "plausible", [day("a", "2026-12-01", visitors=10)]).new == 1  # pulled again


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"likes": 3.0}, "unknown metric(s) likes; known: visitors, pageviews,"),
        ({"clicks": -1.0}, "metric(s) clicks must be finite and not negative"),
        ({"position": float("nan")}, "metric(s) position must be finite and not negative"),
    ],
)
def test_bad_figures_are_refused_naming_them(metrics: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PostDay(source="plausible", slug="a", day=date(2026, 12, 1), metrics=metrics)


def test_a_row_of_another_source_is_refused_and_nothing_is_appended(store: Store) -> None:
    other = PostDay(source="search-console", slug="a", day=date(2026, 12, 1), metrics={"clicks": 1})
    with pytest.raises(
        BadInputError, match=r"^engagement from plausible: rows name another source \(search-console\)$"
    ):
        append_days(store, "plausible", [day("a", "2026-12-01", visitors=1), other])
    assert stored(store) == {}
