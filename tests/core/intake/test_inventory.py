"""Inventory on bad catalogues: every bad row reported with row and reason, the rest go on, nothing damaged."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from content_pipeline.errors import BadInputError
from content_pipeline.intake.catalogue import load_catalogue
from content_pipeline.intake.inventory import take_inventory
from content_pipeline.store import Store, layout
from tests.conftest import make_item, snapshot

BAD_ROWS: list[tuple[dict | bytes, str]] = [
    (make_item(90, slug=None), "missing slug"),
    (make_item(91, slug="Has Upper"), "malformed slug 'Has Upper'"),
    (make_item(92, slug="../../etc/passwd"), "malformed slug '../../etc/passwd'"),
    (make_item(93, slug="a" * 129), "malformed slug"),
    (make_item(94, slug="item-0001"), "duplicate slug (first at row 1)"),
    (make_item(95, price="12.50"), "wrong type for price: expected a number, got text '12.50'"),
    (make_item(96, price=True), "wrong type for price"),
    (make_item(97, features="one, two"), "wrong type for features"),
    (make_item(98, title="x" * 301), "oversized title: 301 characters (max 300)"),
    (make_item(99, title=None), "missing title"),
    (
        b'{"slug": "bad-bytes", "title": "Caf\xe9", "category": "Kitchen", "price": 3}',
        "undecodable text: invalid UTF-8",
    ),
    (b'{"slug": "half-a-row", "title": ', "malformed JSON"),
    (b"[1, 2, 3]", "malformed row: not a JSON object"),
]


def test_each_bad_row_is_reported_with_row_and_reason(write_catalogue, store: Store) -> None:
    good = [make_item(n) for n in range(1, 6)]
    path = write_catalogue(good + [row for row, _ in BAD_ROWS])
    catalogue = load_catalogue(path)
    assert [i.slug for i in catalogue.items] == [r["slug"] for r in good]
    assert len(catalogue.invalid) == len(BAD_ROWS)
    for (_row, reason), invalid in zip(BAD_ROWS, catalogue.invalid, strict=True):
        assert reason in invalid.reason
    rows = [invalid.row for invalid in catalogue.invalid]
    assert rows == list(range(6, 6 + len(BAD_ROWS)))
    assert catalogue.invalid[4].line(path) == f"{path}: row 10 (slug 'item-0001'): duplicate slug (first at row 1)"


def test_inventory_writes_reports_and_keeps_the_good_rows(write_catalogue, store: Store) -> None:
    path = write_catalogue([make_item(1), BAD_ROWS[1][0], make_item(2)])
    inv = take_inventory(store, path, "all", "run-1")
    assert [i.slug for i in inv.needs] == ["item-0001", "item-0002"]
    report = [json.loads(x) for x in store.get(layout.run_key("run-1", "invalid-rows.jsonl")).decode().splitlines()]
    assert report == [
        {"row": 2, "slug": None, "reason": "malformed slug 'Has Upper': use 1-128 characters of [a-z0-9-]"}
    ]
    needs = store.get(layout.run_key("run-1", "needs-content.jsonl")).decode().splitlines()
    assert [json.loads(x)["slug"] for x in needs] == ["item-0001", "item-0002"]


def test_scope_promo_keeps_promo_items(write_catalogue, store: Store) -> None:
    path = write_catalogue([make_item(n) for n in range(1, 9)])
    inv = take_inventory(store, path, "promo", "run-1")
    assert [i.slug for i in inv.needs] == ["item-0004", "item-0008"]


def test_csv_and_parquet_catalogues(tmp_path: Path) -> None:
    rows = [make_item(1), make_item(2)]
    csv = tmp_path / "c.csv"
    csv.write_text(
        "slug,title,category,price,features,promo\n"
        + "".join(
            f"{r['slug']},{r['title']},{r['category']},{r['price']},{'|'.join(r['features'])},{r['promo']}\n"
            for r in rows
        )
        + "Bad!,T,Kitchen,1,,false\n"
        + "ok-slug,T,Kitchen,not-a-number,,false\n"
    )
    cat = load_catalogue(str(csv))
    assert [i.slug for i in cat.items] == ["item-0001", "item-0002"]
    assert cat.items[0].features == tuple(rows[0]["features"])
    assert [(r.row, r.reason.split(":")[0]) for r in cat.invalid] == [
        (4, "malformed slug 'Bad!'"),
        (5, "wrong type for price"),
    ]
    parquet = tmp_path / "c.parquet"
    pl.DataFrame(rows).write_parquet(parquet)
    assert [i.slug for i in load_catalogue(str(parquet)).items] == ["item-0001", "item-0002"]


def test_csv_with_invalid_utf8_reports_the_row(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_bytes(b"slug,title,category,price\nok-1,Good,Kitchen,1\nbad-1,Caf\xe9,Kitchen,2\n")
    cat = load_catalogue(str(csv))
    assert [i.slug for i in cat.items] == ["ok-1"]
    assert cat.invalid[0].row == 3 and cat.invalid[0].reason == "undecodable text in title"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "file not found"),
        ("catalogue.xml", b"<x/>", "unknown format '.xml'; use .jsonl, .csv or .parquet"),
        ("broken.parquet", b"not parquet", "cannot parse"),
    ],
)
def test_unusable_catalogue_is_one_clear_line_and_damages_nothing(
    tmp_path: Path, store: Store, name: str, content: bytes | None, message: str
) -> None:
    store.put(layout.run_key("earlier-run", "report.md"), b"an earlier run\n")
    before = snapshot(store)
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInputError) as err:
        take_inventory(store, str(path), "all", "run-1")
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)
    assert snapshot(store) == before


def test_a_price_table_that_is_not_json_is_one_clear_line(monkeypatch) -> None:
    from content_pipeline.settings import load_settings

    monkeypatch.setenv("PRICE_TABLE", "{not json")
    with pytest.raises(BadInputError, match=r"^settings: error parsing value for field \"price_table\""):
        load_settings()


def test_the_catalogue_can_be_read_from_s3(s3_url: str) -> None:
    import boto3

    bucket = s3_url[len("s3://") :].split("/", 1)[0]
    rows = [make_item(1), make_item(2), {"slug": "Bad Slug"}]
    boto3.client("s3").put_object(
        Bucket=bucket, Key="in/catalogue.jsonl", Body=b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    )
    catalogue = load_catalogue(f"s3://{bucket}/in/catalogue.jsonl")
    assert [i.slug for i in catalogue.items] == ["item-0001", "item-0002"]
    assert [r.row for r in catalogue.invalid] == [3]
    with pytest.raises(BadInputError, match=rf"^catalogue s3://{bucket}/in/missing.jsonl: no such object$"):
        load_catalogue(f"s3://{bucket}/in/missing.jsonl")
