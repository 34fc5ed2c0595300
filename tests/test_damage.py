"""Damaged stored objects: every read terminates, every damaged view is one line naming it, and a rebuild from
the ledger mends it, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from content_pipeline.ledger.jsonl import iter_pieces
from content_pipeline.ops.status import status
from content_pipeline.store import Store
from content_pipeline.views.audit import audit
from content_pipeline.views.consolidate import consolidate
from content_pipeline.views.snapshot import ViewDamagedError, load_manifest, manifest_cell, read_manifest, read_master
from tests.conftest import make_item
from tests.helpers import run
from tests.test_views_audit import record, write_ledger

T = TypeVar("T")
BOUND_S = 60  # a hang guard, not a speed target: each of these finishes in well under a second


def bounded(body: Callable[[], T]) -> T:
    """`body`'s result, or a failure when it has not returned within BOUND_S (it would loop for ever)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            out.append(body())
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), f"still running after {BOUND_S} s: a read that never ends"
    if errors:
        raise errors[0]
    return out[0]


def view_key(store: Store, name: str) -> str:
    return read_manifest(store)["files"][name]


def test_a_master_object_cut_mid_line_is_named_and_never_a_loop(store: Store, write_catalogue) -> None:
    write_ledger(store, [record(f"s-{n}") for n in range(40)])
    consolidate(store)
    key = view_key(store, "successes")
    size = len(store.get(key))
    store.truncate(key, size - 40)  # mid-line, shorter than the manifest says

    result = bounded(lambda: audit(store))
    [violation] = result.violations
    assert violation.startswith(f"invariant 1: master successes ({key}) is shorter than its manifest says")
    assert f"({size - 40} of {size} bytes)" in violation
    with pytest.raises(ViewDamagedError, match="is shorter than its manifest says"):
        bounded(lambda: read_master(store, "successes"))
    assert status(store, write_catalogue([make_item(1)]))["views_damaged"] == ["successes"]

    consolidate(store, verify=True)  # what `content-pipeline consolidate` runs
    assert audit(store).ok
    assert read_master(store, "successes").height == 40


def test_an_object_that_shrinks_while_it_is_read_ends_the_read(store: Store) -> None:
    key = write_ledger(store, [record(f"s-{n}") for n in range(200)])
    size = len(store.get(key))
    pieces = iter_pieces(store, [(key, size)], chunk_bytes=4096)
    first = next(pieces)
    store.truncate(key, len(first.data) + 100)  # cut while read: the rest of the listed size never comes
    rest = bounded(lambda: list(pieces))
    assert sum(p.lines for p in [first, *rest]) < 200


@pytest.mark.parametrize(
    "name, garbage",
    [("checkpoint", b'{"done": {}, "rejected": {}, "queued": {}}\ngarbage\n'), ("usage", b"not json\n")],
)
def test_a_garbage_json_view_is_named_by_status_and_audit_and_rebuilt_by_go_live(
    make_settings, store: Store, name: str, garbage: bytes
) -> None:
    first = run(make_settings(), store)
    assert first.ok and first.stats.successes == 20
    key = view_key(store, name)
    store.put(key, garbage)
    settings = make_settings()

    with pytest.raises(ViewDamagedError, match=rf"^{name} view \({key}\) differs from the digest"):
        status(store, settings.catalogue)
    invariant = {"checkpoint": 4, "usage": 5}[name]
    [violation] = audit(store).violations
    assert violation.startswith(f"invariant {invariant}: {name} view ({key}) differs from the digest")

    again = run(settings, store)  # the views are read first: rebuilt from the ledger, nothing paid again
    assert again.ok and again.audit_ok and again.stats.calls == 0 and again.spend_usd == 0
    assert f"{name} view ({key}) differs from the digest its manifest recorded: rebuilt from the ledger" in again.notes
    assert audit(store).ok and status(store, settings.catalogue)["done"] == 20


def test_a_damaged_manifest_is_one_line_and_consolidate_rebuilds_it(store: Store) -> None:
    write_ledger(store, [record("a"), record("b")])
    consolidate(store)
    _, version, _ = load_manifest(store)
    current = manifest_cell(store).key(version)
    store.put(current, b'{"files": "not a dict"}\n')
    [violation] = bounded(lambda: audit(store)).violations
    assert violation.startswith(f"invariant 3: the manifest {current} is damaged (not a manifest the pipeline wrote)")
    consolidate(store)
    assert audit(store).ok and read_master(store, "successes").height == 2
