"""Pulling and importing engagement into a store whose attempt log names the published posts: figures reach
the log matched to their posts by path, link or post id; a re-pull appends nothing; a bad import row refuses
the whole file naming it; rows for posts the pipeline never published are skipped and counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from content_pipeline.engagement.log import read_log
from content_pipeline.engagement.plausible import PlausibleSource
from content_pipeline.engagement.pull import import_file, pull_sources
from content_pipeline.errors import BadInputError
from content_pipeline.publish.log import AttemptLog
from content_pipeline.rehearsal.plausible import PlausibleRehearsal, PlausibleSite
from content_pipeline.store import Store, layout

TODAY = datetime.now(UTC).date()


def publish(store: Store, count: int) -> None:
    """The attempt log of a publish run that posted `count` items to a WordPress site."""
    with AttemptLog(store, "publish-run") as log:
        for n in range(count):
            slug, link = f"item-{n:04d}", f"https://shop.example/item-{n:04d}/"
            log.write(
                "outcome",
                target="wordpress",
                slug=slug,
                key=f"k{n}",
                live=True,
                result="created",
                content_hash="h",
                post_id=str(100 + n),
                link=link,
            )


def test_a_pull_matches_pages_to_posts_and_a_re_pull_appends_nothing(store: Store) -> None:
    publish(store, 3)
    pages = {(f"/item-{n:04d}/", (TODAY - timedelta(days=1)).isoformat()): {"visitors": 5.0 + n} for n in range(3)}
    pages[("/about/", TODAY.isoformat())] = {"visitors": 70.0}
    with PlausibleRehearsal(PlausibleSite("shop.example", "k", pages)) as url:
        source = PlausibleSource(url, "k", "shop.example")
        first = pull_sources(store, [source], since_days=7)
        again = pull_sources(store, [source], since_days=7)
    assert first.lines == ["plausible: 3 new post-day(s), 0 revised, 0 unchanged"]
    assert again.lines == ["plausible: 0 new post-day(s), 0 revised, 3 unchanged"]
    assert first.failed == again.failed == []
    assert sorted(d.slug for d in read_log(store).days()) == ["item-0000", "item-0001", "item-0002"]


def test_a_store_with_nothing_published_pulls_nothing(store: Store) -> None:
    assert pull_sources(store, [], since_days=7).lines == ["no published post has a link yet: nothing to pull"]


def test_a_source_that_refuses_is_named_and_the_others_are_pulled(store: Store) -> None:
    publish(store, 2)
    pages = {(f"/item-{n:04d}/", (TODAY - timedelta(days=1)).isoformat()): {"visitors": 9.0} for n in range(2)}
    with PlausibleRehearsal(PlausibleSite("shop.example", "right-key", pages)) as url:
        wrong = PlausibleSource(url, "wrong-key", "shop.example", name="old-site")
        right = PlausibleSource(url, "right-key", "shop.example")
        pulled = pull_sources(store, [wrong, right], since_days=7)
    assert pulled.failed == ["old-site"]
    assert pulled.lines[0].startswith("old-site: failed: ") and "401" in pulled.lines[0]
    assert "wrong-key" not in pulled.lines[0]
    assert pulled.lines[1] == "plausible: 2 new post-day(s), 0 revised, 0 unchanged"


def test_an_import_matches_rows_by_slug_path_url_or_post_id_and_skips_strangers(store: Store, tmp_path: Path) -> None:
    publish(store, 4)
    table = tmp_path / "ga4.csv"
    table.write_text(
        "source,slug,path,url,post_id,day,visitors,shares\n"
        "ga4,item-0000,,,,2026-12-01,10,1\n"
        "ga4,,/item-0001/,,,2026-12-01,11,\n"
        "ga4,,,https://shop.example/item-0002/,,2026-12-01,12,\n"
        "matomo,,,,103,2026-12-01,13,\n"
        "ga4,,/somebody-elses/,,,2026-12-01,99,\n"
    )
    lines = import_file(store, str(table))
    assert lines == [
        "ga4: 3 new post-day(s), 0 revised, 0 unchanged",
        "matomo: 1 new post-day(s), 0 revised, 0 unchanged",
        "1 row(s) name no post the pipeline published: skipped",
    ]
    found = {(d.source, d.slug): d.metrics for d in read_log(store).days()}
    assert found[("ga4", "item-0000")] == {"visitors": 10.0, "shares": 1.0} and found[("matomo", "item-0003")]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("slug,day,likes\nitem-0000,2026-12-01,10", "row 2: unknown column(s) likes; known: "),
        ("slug,path,day,visitors\nitem-0000,/item-0000/,2026-12-01,10", "row 2: name the post by exactly one of slug,"),
        ("slug,day,visitors\nitem-0000,2026-13-01,10", "row 2: month must be in 1..12"),
        ("slug,day,visitors\nitem-0000,2026-12-01,-3", "row 2: Value error, metric(s) visitors must be finite and not"),
        ("slug,day,visitors,final\nitem-0000,2026-12-01,3,maybe", "row 2: final 'maybe' is not true or false"),
    ],
)
def test_a_bad_row_refuses_the_whole_file_naming_it(store: Store, tmp_path: Path, table: str, message: str) -> None:
    publish(store, 1)
    path = tmp_path / "bad.csv"
    path.write_text(f"{table}\n")
    with pytest.raises(BadInputError) as refused:
        import_file(store, str(path))
    assert str(refused.value).startswith(f"engagement import {path}: {message}"), refused.value
    assert store.list(layout.ENGAGEMENT_PREFIX) == []
