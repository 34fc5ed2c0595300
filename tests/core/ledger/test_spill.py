"""A ledger worked a slug partition at a time gives the same views and the same audit as one worked whole.
(The audit's checks themselves run both ways in tests/core/views/test_views_audit.py: its `ledger_passes` fixture.)"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from content_pipeline.ledger import spill
from content_pipeline.ledger.spill import Partitions
from content_pipeline.store import Store, open_store
from content_pipeline.views.audit import audit
from content_pipeline.views.consolidate import consolidate
from content_pipeline.views.passes import KEPT_PASS, derive
from content_pipeline.views.snapshot import read_views
from tests.support.helpers import record, write_ledger

VIEWS = ["successes", "rejects", "processed", "rejected", "usage", "checkpoint"]


@pytest.fixture
def partitioned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ledger of more than 600 bytes is worked in partitions (a record line is about 700 bytes)."""
    monkeypatch.setattr(spill, "PART_BYTES", 600)
    KEPT_PASS.clear()


def test_partitions_keep_each_key_together_and_give_every_row_back_once(tmp_path: Path) -> None:
    frames = [
        pl.DataFrame({"slug": [f"s{i % 97}" for i in range(n, n + 500)], "n": range(n, n + 500)}) for n in (0, 500)
    ]
    with Partitions(7, flush_rows=64) as parts:
        for frame in frames:
            parts.add(frame)
        folder = Path(parts._path(0)).parent
        assert len(os.listdir(folder)) == 7 and parts.spilled_bytes > 0
        first = list(parts)
        again = list(parts)
    assert not folder.exists()  # closed: the temporary files are gone
    assert [p.equals(q) for p, q in zip(first, again, strict=True)] == [True] * 7
    rows = pl.concat(first)
    assert sorted(rows["n"].to_list()) == list(range(1000))
    for part in first:  # in the order added, and no slug in two partitions
        assert part["n"].to_list() == sorted(part["n"].to_list())
    owners = pl.concat([p.select("slug").unique().with_columns(part=pl.lit(i)) for i, p in enumerate(first)])
    assert owners["slug"].is_unique().all() and owners.height == 97


def test_one_partition_stays_in_memory_and_an_empty_one_keeps_the_schema() -> None:
    schema = pl.Schema({"slug": pl.String(), "n": pl.Int64()})
    with Partitions(1, schema=schema) as one:
        one.add(pl.DataFrame({"slug": ["a"], "n": [1]}))
        assert one._dir is None and [p.to_dicts() for p in one] == [[{"slug": "a", "n": 1}]]
    with Partitions(3, schema=schema) as empty:
        assert [p.schema for p in empty] == [schema] * 3


def test_compact_keeps_every_value_and_null() -> None:
    frame = pl.DataFrame({"slug": ["a", None, "ccc" * 20], "n": [1, 2, 3]}).filter(pl.col("n") > 1)
    assert spill.compact(frame).equals(frame) and spill.compact(frame)["slug"].null_count() == 1


def ledger(store: Store) -> None:
    """Three runs: later versions, a reject followed by a success, a reject alone, a damaged line."""
    write_ledger(store, [record(f"s{i:03d}", at="2026-11-23T00:00:01") for i in range(40)], segment="a.jsonl")
    write_ledger(
        store,
        [record(f"s{i:03d}", run="run-2", at="2026-11-23T00:00:02") for i in range(0, 40, 3)]
        + [record(f"r{i}", run="run-2", status="reject") for i in range(6)],
        segment="b.jsonl",
    )
    write_ledger(
        store,
        [record(f"r{i}", run="run-3", at="2026-11-23T00:00:03") for i in range(3)],
        segment="c.jsonl",
        tail=b"not a record\n",
    )


def test_a_partitioned_consolidation_publishes_the_same_views_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, parted = open_store(str(tmp_path / "whole")), open_store(str(tmp_path / "parted"))
    ledger(whole)
    ledger(parted)
    one = consolidate(whole)
    monkeypatch.setattr(spill, "PART_BYTES", 600)
    many = consolidate(parted)
    assert one is not None and many is not None
    assert derive(parted).partitions > 10  # the ledger really was worked in partitions
    assert (many.records, many.successes, many.rejects) == (one.records, one.successes, one.rejects) == (63, 43, 3)
    assert many.bad_lines == one.bad_lines == ["ledger/run-3/c.jsonl: line 4 does not parse: 'not a record'"]
    assert read_views(parted, *VIEWS) == read_views(whole, *VIEWS)


def test_the_audit_after_a_consolidation_does_not_read_the_ledger_again(
    tmp_path: Path, partitioned: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path))
    ledger(store)
    reads: list[str] = []
    get_range = store.get_range

    def counted(key: str, start: int, end: int) -> bytes:
        reads.append(key)
        return get_range(key, start, end)

    monkeypatch.setattr(store, "get_range", counted)
    consolidate(store)
    assert {k for k in reads if k.startswith("ledger/")} == {
        f"ledger/run-{n}/{s}.jsonl" for n, s in ((1, "a"), (2, "b"), (3, "c"))
    }
    reads.clear()
    result = audit(store)
    assert [k for k in reads if k.startswith("ledger/")] == []  # the pass consolidation spilled was worked again
    assert result.violations == [
        "invariant 6: ledger/run-3/c.jsonl: line 4 does not parse: 'not a record'; kept in "
        "quarantine/ledger/run-3/c.jsonl.line-4; no slug readable, so nothing is held; "
        "`content-pipeline quarantine --accept-loss 'ledger/run-3/c.jsonl: line 4'` clears it"
    ]
    write_ledger(store, [record("late", run="run-4")], segment="d.jsonl")  # the ledger changed: read it again
    result = audit(store)
    assert any(k.startswith("ledger/") for k in reads)
    assert result.notes == ["1 ledger record(s) appended since the last consolidation"]
