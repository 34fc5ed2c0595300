"""Big catalogues and broken ones: a run reads the rows it claims, not the catalogue, and stores only what it
claimed; an empty catalogue, one without a valid row, or one with too many invalid rows fails before any spend."""

from __future__ import annotations

import json
import os

import pytest

from content_pipeline.claims.batch import run_lease
from content_pipeline.claims.queue import claim
from content_pipeline.errors import CatalogueRefusedError
from content_pipeline.ledger.scan import read_records
from content_pipeline.run.commands import run_command
from content_pipeline.run.reporter import PlainReporter
from content_pipeline.store import Store, layout
from tests.conftest import make_item
from tests.support.helpers import run

ROWS = 3000


@pytest.fixture
def big(write_catalogue) -> str:
    return write_catalogue([make_item(n) for n in range(1, ROWS + 1)], "big.jsonl")


def _run_objects(store: Store, run_id: str) -> dict[str, int]:
    return {info.key.rsplit("/", 1)[-1]: info.size for info in store.list(f"runs/{run_id}/")}


def test_a_run_reads_the_rows_it_claims_and_stores_only_its_batch(make_settings, store: Store, big: str) -> None:
    first = run(make_settings(catalogue=big, limit=10))
    assert first.ok, first.failure
    assert (first.catalogue_rows, first.catalogue_complete, first.claimed) == (10, False, 10)
    objects = _run_objects(store, first.run_id)
    assert layout.NEEDS_CONTENT not in objects  # the needs-content list of 3,000 is not written per run
    catalogue_bytes = os.path.getsize(big)
    assert sum(objects.values()) < catalogue_bytes / 50, objects
    second = run(make_settings(catalogue=big, limit=20))
    assert second.ok and second.claimed == 20
    assert 30 <= second.catalogue_rows <= 60  # the 10 done ones are read past, and little more
    slugs = [r.slug for r in read_records(store) if r.run_id == second.run_id]
    assert sorted(slugs) == [f"item-{n:04d}" for n in range(11, 31)]
    grown = sum(_run_objects(store, second.run_id).values())
    assert grown < 3 * sum(objects.values())  # twice the batch, about twice the bytes: not the catalogue's


def test_items_another_live_run_holds_are_read_past(make_settings, store: Store, big: str) -> None:
    held = [f"item-{n:04d}" for n in range(1, 11)]
    lease = run_lease(store, "other-run", 60)  # a live run (this process) holds the first ten
    claim(store, "other-run", held, 10, os.getpid(), 3600)
    try:
        report = run(make_settings(catalogue=big, limit=5))
    finally:
        lease.release()
    assert report.ok and report.claimed == 5
    slugs = {r.slug for r in read_records(store) if r.run_id == report.run_id}
    assert slugs == {f"item-{n:04d}" for n in range(11, 16)}


def test_the_inventory_command_reads_every_row_and_writes_the_needs_content_list(
    make_settings, store: Store, big: str
) -> None:
    settings = make_settings(catalogue=big, limit=10)
    outcome = run_command("inventory", settings, store, PlainReporter())
    assert outcome.ok and outcome.message.startswith(f"run {settings.run_id}: {ROWS} item(s) need content")
    written = store.get(layout.run_key(settings.run_id or "", layout.NEEDS_CONTENT)) or b""
    assert [json.loads(line)["slug"] for line in written.splitlines()] == [f"item-{n:04d}" for n in range(1, ROWS + 1)]
    claimed = run_command("batch", settings, store, PlainReporter())
    assert claimed.ok and claimed.message.endswith("claimed 10 item(s)")


@pytest.mark.parametrize(
    ("rows", "extra", "line"),
    [
        ([], {}, "is empty: no rows"),
        ([b"   "], {}, "is empty: no rows"),
        (
            [make_item(1, slug="Bad Slug"), b"{broken", make_item(3, price=-1)],
            {},
            "has no valid row: 3 row(s), 0 valid, 3 invalid",
        ),
        (
            [make_item(1), make_item(2, title=None), make_item(3, title=None), make_item(4, title=None), make_item(5)],
            {},
            "60% of the rows are invalid (5 row(s), 2 valid, 3 invalid), more than MAX_INVALID_ROWS_SHARE=0.5",
        ),
    ],
)
def test_a_broken_catalogue_fails_the_run_before_any_spend(
    make_settings, store: Store, write_catalogue, rows, extra, line
) -> None:
    catalogue = write_catalogue(rows, "broken.jsonl")
    report = run(make_settings(catalogue=catalogue, **extra))
    assert not report.ok and isinstance(report.error, CatalogueRefusedError)
    assert report.error.exit_code == 1
    assert report.failure is not None and report.failure.startswith(f"inventory: catalogue {catalogue}")
    assert line in report.failure and report.failure.endswith("(spent $0.0000 of $250.00)")
    assert report.claimed == 0 and read_records(store) == []


def test_a_share_of_invalid_rows_under_the_setting_goes_on(make_settings, store: Store, write_catalogue) -> None:
    rows = [make_item(1), make_item(2, title=None), make_item(3, title=None), make_item(4, title=None), make_item(5)]
    report = run(make_settings(catalogue=write_catalogue(rows, "mostly-bad.jsonl"), max_invalid_rows_share=0.7))
    assert report.ok and report.stats.successes == 2 and len(report.invalid_rows) == 3


def test_a_run_with_a_small_limit_starts_on_a_big_catalogue_without_reading_it(
    make_settings, store: Store, write_catalogue, tmp_path
) -> None:
    """What a user sees: the run's report says how many rows it read; a catalogue truncated after the rows
    it needs (a broken export's tail) does not stop it."""
    path = tmp_path / "tail-broken.jsonl"
    path.write_text("".join(json.dumps(make_item(n)) + "\n" for n in range(1, 21)) + "{not json" * 100_000)
    report = run(make_settings(catalogue=str(path), limit=5))
    assert report.ok and report.catalogue_rows == 5 and report.invalid_rows == []
    assert "- catalogue: 5 rows read (enough for the limit), 5 valid, 0 invalid" in report.markdown()
