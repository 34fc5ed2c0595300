"""Damaged stored objects: every read terminates, every damaged view is one line naming it, and a rebuild from
the ledger mends it, on both backends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from content_pipeline.ledger.jsonl import iter_pieces
from content_pipeline.ops.damaged import accept
from content_pipeline.ops.status import status
from content_pipeline.store import Store, layout, open_store
from content_pipeline.views.audit import audit
from content_pipeline.views.consolidate import consolidate
from content_pipeline.views.snapshot import (
    ViewDamagedError,
    load_manifest,
    manifest_cell,
    read_manifest,
    read_master,
    read_usage,
    views_current,
)
from tests.conftest import make_item
from tests.support.helpers import line_number, record, run, segment_holding, write_ledger

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


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda line: line[:60] + b"\x00\x13\x37" + line[63:], id="bytes-damaged"),
        pytest.param(
            lambda line: line.replace(b'"cost_usd":', b'"cost_usd":99.0,"was":', 1).replace(
                b'"description":"', b'"description":"I\'m sorry, I cannot help with that. ', 1
            ),
            id="edited-valid-json",
        ),
    ],
)
def test_a_damaged_ledger_record_is_kept_aside_its_slug_held_never_paid_again_until_the_loss_is_accepted(
    make_settings, store: Store, damage: Callable[[bytes], bytes]
) -> None:
    settings = make_settings()
    first = run(settings, store)
    assert first.ok and first.stats.successes == 20
    spend = status(store, settings.catalogue)["spend_usd"]
    key, data, start = segment_holding(store, "item-0007")
    end = data.index(b"\n", start)
    store.put(key, data[:start] + damage(data[start:end]) + data[end:])
    where = f"{key}: line {line_number(data, start)}"

    assert not views_current(store)  # the views' fingerprint sees an edit, whatever its size
    consolidate(store)
    [violation] = audit(store).violations
    assert violation.startswith(f"invariant 6: {where} ")
    assert f"kept in quarantine/{key}.line-{line_number(data, start)}; slug item-0007 held" in violation
    assert store.get(f"quarantine/{key}.line-{line_number(data, start)}") == damage(data[start:end])
    seen = status(store, settings.catalogue)
    assert seen["held"] == 1 and seen["needs_content"] == 0 and seen["done"] == 19
    assert seen["spend_usd"] == spend  # the books never drop: the views' copy of its cost stays (never an edited one)
    [booking] = [json.loads(store.get(i.key) or b"") for i in store.list(layout.BOOKED_LOSSES)]
    assert booking["where"] == where and booking["source"].startswith("the views' copy of record ")

    again = run(settings, store)  # the held slug is not paid for again
    assert again.stats.calls == 0 and again.spend_usd == 0 and not again.audit_ok

    assert status(store, settings.catalogue)["spend_usd"] == spend  # a run that paid nothing changes nothing
    [accepted] = accept(store, where)  # the operator's word
    assert accepted.slug == "item-0007"
    result = audit(store)
    assert result.ok and any(note.startswith(f"{where} ") and "loss accepted at" in note for note in result.notes)
    assert status(store, settings.catalogue)["spend_usd"] < spend  # the accepted loss leaves the books
    after = run(settings, store)
    assert after.ok and after.stats.calls == 1 and after.stats.successes == 1


def test_a_record_damaged_before_the_views_copied_it_is_booked_at_the_most_a_record_cost(store: Store) -> None:
    costs = [0.0001, 0.0004, 0.0002]
    key = write_ledger(store, [record(f"s-{n}", cost_usd=cost) for n, cost in enumerate(costs)])
    data = store.get(key) or b""
    start = data.index(b"\n") + 1  # the second record, s-1, never consolidated
    store.put(key, data[:start] + b"\x00garbage" + data[start + 8 :])
    consolidate(store)
    [booking] = [json.loads(store.get(i.key) or b"") for i in store.list(layout.BOOKED_LOSSES)]
    assert booking["source"] == "no copy in the views: the most any record of the ledger cost"
    assert booking["run_id"] == "run-1" and booking["cost_nano"] == 200_000  # s-1's true cost unknown: s-2's
    assert read_usage(store)["cost_nano"] == 100_000 + 200_000 + 200_000
    assert not [v for v in audit(store).violations if v.startswith("invariant 5")]


@pytest.mark.slow  # runs the command line as processes
def test_the_quarantine_command_lists_damaged_records_and_accepts_a_loss(tmp_path, store_dir, write_catalogue) -> None:
    import subprocess
    import sys

    from tests.support.cli_helpers import base_env

    env = {**base_env(tmp_path), "STORE_URL": str(store_dir), "CATALOGUE": write_catalogue([make_item(1)])}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True)

    assert cli("go-live").returncode == 0
    assert cli("quarantine").stdout == "quarantine: no damaged ledger records\n"
    store = open_store(str(store_dir))
    key, data, start = segment_holding(store, "item-0001")
    store.put(key, data[:start] + data[start:].replace(b'"price"', b'"prize"', 1))
    where = f"{key}: line {line_number(data, start)}"
    listed = cli("quarantine")
    assert listed.returncode == 0 and listed.stdout.startswith(f"{where} fails its checksum")
    assert "slug item-0001 held (not generated again)" in listed.stdout  # listing writes nothing ...
    assert store.list(layout.QUARANTINE_PREFIX) == []

    wrong = cli("quarantine", "--accept-loss", "ledger/nowhere: line 1")
    assert wrong.returncode == 2
    assert (
        wrong.stderr
        == f"error: --accept-loss 'ledger/nowhere: line 1' names no damaged record (damaged and not accepted: {where})\n"
    )
    accepted = cli("quarantine", "--accept-loss", where)
    assert accepted.returncode == 0 and accepted.stdout == f"quarantine: loss accepted: {where} (slug item-0001)\n"
    assert json.loads(cli("quarantine", "--json").stdout)["accepted"]["where"] == where
    assert cli("audit").returncode == 0
