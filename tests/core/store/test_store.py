"""The local store's primitives, and that no key can reach outside the store."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from content_pipeline.errors import BadInputError, ReadOnlyViolation, StoreError
from content_pipeline.store import ReadOnlyStore, Store, open_store


def test_put_get_replace_and_list(store: Store) -> None:
    assert store.get("a/b.json") is None
    store.put("a/b.json", b"one")
    store.put("a/b.json", b"two")
    store.put("a/c.json", b"three")
    assert store.get("a/b.json") == b"two"
    assert [i.key for i in store.list("a/")] == ["a/b.json", "a/c.json"]
    assert [i.size for i in store.list("a/")] == [3, 5]


def test_put_if_absent_creates_once(store: Store) -> None:
    assert store.put_if_absent("lock.json", b"first")
    assert not store.put_if_absent("lock.json", b"second")
    assert store.get("lock.json") == b"first"


def test_appends_are_whole_records_from_many_threads(store: Store) -> None:
    appender = store.appender("ledger/run/seg.jsonl")
    threads = [
        threading.Thread(target=lambda n=n: [appender.append(f"{n}-{i}-{'x' * 500}\n".encode()) for i in range(50)])
        for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    appender.close()
    lines = b"".join(store.get(i.key) for i in store.list("ledger/run/")).decode().splitlines()
    assert len(lines) == 400
    assert all(line.endswith("x" * 500) for line in lines)


@pytest.mark.parametrize(
    "key", ["../escape", "/etc/passwd", "a/../../b", "a//b", "nul\x00byte", "sp ace", ".hidden", ""]
)
def test_keys_cannot_leave_the_store(store: Store, tmp_path: Path, key: str) -> None:
    with pytest.raises(StoreError, match="invalid store key"):
        store.put(key, b"x")
    assert not (tmp_path / "escape").exists()


def test_read_only_store_refuses_every_write_and_changes_nothing(store: Store) -> None:
    store.put("master/x.jsonl", b"kept\n")
    ro = ReadOnlyStore(store)
    for write in (
        lambda: ro.put("master/x.jsonl", b"gone"),
        lambda: ro.put_if_absent("y", b"1"),
        lambda: ro.appender("ledger/a.jsonl"),
        lambda: ro.delete("master/x.jsonl"),
    ):
        with pytest.raises(ReadOnlyViolation, match="EVIDENCE_ONLY"):
            write()
    assert ro.get("master/x.jsonl") == b"kept\n"
    assert [i.key for i in ro.list("")] == ["master/x.jsonl"]


def test_unknown_store_scheme_is_one_clear_line() -> None:
    with pytest.raises(BadInputError, match=r"STORE_URL 'ftp://x': unsupported scheme"):
        open_store("ftp://x")


def test_a_failed_append_leaves_no_half_record(store: Store, monkeypatch) -> None:
    if store.url.startswith("s3://"):
        pytest.skip("an S3 record is one object: a failed PUT leaves nothing behind")
    import errno
    import os

    from content_pipeline.errors import StoreIOError
    from content_pipeline.store import local

    appender = store.appender("ledger/r/seg.jsonl")
    appender.append(b'{"a": 1}\n')
    real_write = os.write

    def disk_full(fd: int, data) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local.os, "write", disk_full)
    with pytest.raises(StoreIOError, match="No space left on device"):
        appender.append(b'{"b": 2}\n')
    monkeypatch.setattr(local.os, "write", real_write)
    appender.append(b'{"c": 3}\n')
    appender.close()
    assert store.get("ledger/r/seg.jsonl") == b'{"a": 1}\n{"c": 3}\n'


def test_missing_bucket_is_one_clear_line_before_any_spend(s3_endpoint: str) -> None:
    with pytest.raises(
        BadInputError, match=r"^STORE_URL s3://no-such-bucket-here/p: bucket 'no-such-bucket-here' does not exist$"
    ):
        open_store("s3://no-such-bucket-here/p")
