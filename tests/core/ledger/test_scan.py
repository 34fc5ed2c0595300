"""Bounded-memory scans and streamed writes: what a chunked read finds equals what a whole read finds."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest

from content_pipeline.ledger.jsonl import ColumnCache, decode_objects
from content_pipeline.ledger.records import SCHEMA, valid_record
from content_pipeline.ledger.scan import read_records, scan_ledger
from content_pipeline.store import Store
from content_pipeline.store.s3 import S3Store
from content_pipeline.views.audit import audit
from content_pipeline.views.consolidate import consolidate
from content_pipeline.views.snapshot import read_manifest, read_master, read_view
from tests.support.helpers import record, write_ledger

COLUMNS = {"n": pl.Int64(), "tag": pl.String()}


def rows(count: int, start: int = 0) -> bytes:
    return b"".join(
        json.dumps({"n": i, "tag": "x" * (i % 37), "extra": {"k": [i]}}).encode() + b"\n"
        for i in range(start, start + count)
    )


@pytest.mark.parametrize("chunk", [7, 64, 1000, 10_000_000])
def test_chunked_reads_see_every_line_once_wherever_the_chunks_cut(store: Store, chunk: int) -> None:
    data = rows(300) + b'{"n": 300, "tag": "torn'
    store.put("objs/a.jsonl", data)
    store.put("objs/b.jsonl", rows(5, start=1000))
    objects = [("objs/a.jsonl", len(data), None), ("objs/b.jsonl", len(rows(5, start=1000)), None)]
    limit = len(rows(120))  # the byte where line 120 ends
    a, b = decode_objects(store, objects, COLUMNS, lambda _: True, limits={0: limit}, chunk_bytes=chunk)
    assert a.frame["n"].to_list() == list(range(300)) and a.frame["line"].to_list() == list(range(300))
    assert b.frame["n"].to_list() == list(range(1000, 1005)) and b.frame["line"].to_list() == list(range(5))
    assert a.end.tail == b'{"n": 300, "tag": "torn' and a.end.complete == len(rows(300)) and a.end.lines == 300
    assert a.end.lines_at == {limit: 120}
    assert a.bad == b.bad == []


def test_a_damaged_line_is_named_by_object_and_line_and_the_rest_is_kept(store: Store) -> None:
    data = rows(3) + b"\n" + b"not json\n" + b'{"n": "text"}\n' + b"\xff\xfe\n" + rows(2, start=10)
    store.put("objs/a.jsonl", data)
    [found] = decode_objects(store, [("objs/a.jsonl", len(data), None)], COLUMNS, lambda t: t.startswith("{"))
    assert found.frame["n"].to_list() == [0, 1, 2, 10, 11]
    assert found.frame["line"].to_list() == [0, 1, 2, 7, 8]  # line numbers count the blank and the bad lines
    assert [bad.message("objs/a.jsonl") for bad in found.bad] == [
        "objs/a.jsonl: line 5 does not parse: 'not json'",
        """objs/a.jsonl: line 6 does not parse: '{"n": "text"}'""",
        "objs/a.jsonl: line 7 is not UTF-8",
    ]


def test_an_object_is_decoded_once_per_version(store: Store) -> None:
    cache = ColumnCache()
    store.put("objs/a.jsonl", rows(10))
    [info] = store.list("objs/")
    first = decode_objects(store, [(info.key, info.size, info.version)], COLUMNS, bool, cache=cache)
    again = decode_objects(store, [(info.key, info.size, info.version)], COLUMNS, bool, cache=cache)
    assert (cache.hits, cache.misses) == (1, 1) and again[0].frame.equals(first[0].frame)
    store.put("objs/a.jsonl", rows(12))  # a new version: read again
    [info] = store.list("objs/")
    [new] = decode_objects(store, [(info.key, info.size, info.version)], COLUMNS, bool, cache=cache)
    assert new.frame.height == 12 and cache.misses == 2


def test_the_ledger_scan_decodes_only_the_view_columns_and_keeps_where_each_row_is(store: Store) -> None:
    write_ledger(store, [record("a"), record("b", status="reject")], segment="one.jsonl")
    write_ledger(store, [record("c", run="run-2")], segment="two.jsonl")
    scan = scan_ledger(store)
    assert scan.frame.columns == [*SCHEMA, "seg", "line"]
    assert sorted(scan.frame.select("slug", "seg", "line").rows()) == [("a", 0, 0), ("b", 0, 1), ("c", 1, 0)]
    assert [s for s, _ in scan.segments] == ["ledger/run-1/one.jsonl", "ledger/run-2/two.jsonl"]
    assert {r.slug for r in read_records(store)} == {"a", "b", "c"}
    assert valid_record(record("a").line().decode()) and not valid_record('{"id": "x"}')


def test_master_lines_are_the_ledger_lines_byte_for_byte(store: Store) -> None:
    records = [record(f"s{i:03d}", at=f"2026-11-23T00:00:{i % 60:02d}") for i in range(150)]
    records += [record("s001", at="2026-11-23T01:00:00", attempt=2)]  # a later version of s001
    records += [record(f"r{i}", status="reject") for i in range(5)]
    write_ledger(store, records)
    consolidate(store)
    lines = (read_view(store, "successes") or b"").splitlines(keepends=True)
    want = [r.line() for r in records if r.status == "success" and r is not records[1]]
    assert sorted(lines) == sorted(want) and len(lines) == 150
    manifest = read_manifest(store) or {}
    data = read_view(store, "successes") or b""
    assert manifest["sha256"]["successes"] == hashlib.sha256(data).hexdigest()
    assert manifest["sizes"]["successes"] == len(data)
    assert read_master(store, "rejects")["slug"].sort().to_list() == [f"r{i}" for i in range(5)]
    assert audit(store).ok


def test_a_streamed_view_larger_than_one_upload_part_is_whole(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """On S3 a view bigger than a part goes up as a multipart upload; on disk through a temp file."""
    if isinstance(store, S3Store):
        monkeypatch.setattr("content_pipeline.store.s3.PART_BYTES", 5 * 2**20)
    big = "x" * 2000
    records = [record(f"s{i:05d}", content={"headline": big}) for i in range(6000)]  # about 13 MB of successes
    write_ledger(store, records)
    consolidate(store)
    data = read_view(store, "successes") or b""
    assert len(data) > 12 * 2**20 and data.count(b"\n") == 6000
    assert sorted(data.splitlines(keepends=True)) == sorted(r.line() for r in records)
    assert audit(store).ok
    leftovers = [i.key for i in store.list("master/") if ".tmp-" in i.key]
    assert leftovers == []


def test_an_aborted_writer_leaves_the_previous_object(store: Store) -> None:
    store.put("objs/v.jsonl", b"old\n")
    writer = store.writer("objs/v.jsonl")
    writer.write(b"new, half written")
    writer.abort()
    assert store.get("objs/v.jsonl") == b"old\n"
    assert [i.key for i in store.list("objs/")] == ["objs/v.jsonl"]
    assert store.get_range("objs/v.jsonl", 1, 3) == b"ld" and store.get_range("objs/missing", 0, 5) == b""
