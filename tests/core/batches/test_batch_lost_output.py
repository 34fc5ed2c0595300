"""A finished batch whose output file is missing or unreadable while the provider reports answered requests,
or whose error file cannot be downloaded or breaks off mid-read: collect holds its outcomes as unknown
(nothing settled as a $0 reject, its reservation still booked, health names it, later batches settled) and
settles them on a later collect once the file reads, each answer paid and recorded once."""

from __future__ import annotations

from typing import Any

import pytest

from content_pipeline.claims.pending import outstanding
from content_pipeline.ledger.scan import read_records
from content_pipeline.ops.health import health
from content_pipeline.rehearsal.batches import LOST_ERRORS
from content_pipeline.store import Store
from content_pipeline.views.audit import audit
from tests.support.helpers import batch_settings, collect, fake_llm, invoice, run

WHY = {
    "none": "the provider reports 20 answered request(s) and gives no output file",
    "gone": "could not be read (could not download file",
    "garbled": "gives 0 readable answer(s) of the 20 reported",
}


@pytest.mark.parametrize("lost", list(WHY))
def test_answers_without_a_readable_output_file_are_held_then_settled_once(
    make_settings: Any, store: Store, lost: str
) -> None:
    with fake_llm("sk-b", lost_output=lost) as server:
        settings = batch_settings(make_settings, server)
        assert run(settings, store).ok
        [planned] = outstanding(store)
        planned.pop("age_s")
        line = collect(settings, store)
        assert line.startswith("0 batch(es) settled: 0 success(es), 0 reject(s)"), line
        assert line.endswith("1 outstanding (oldest 0.0 h); 1 held as unknown, their answers unreadable (see health)")
        assert read_records(store) == []  # not one $0 reject
        assert [{**row, "age_s": 0} for row in outstanding(store)] == [{**planned, "age_s": 0}]  # still booked
        [check] = [c for c in health(store, settings).checks if c.name == "batches"]
        assert check.level == "amber" and check.detail.startswith("1 held as unknown: "), check.detail
        assert f"{settings.run_id}/0001 (batch_" in check.detail and WHY[lost] in check.detail, check.detail
        assert f"${planned['reserved_usd']:.4f} stays booked" in check.detail
        assert collect(settings, store).startswith("0 batch(es) settled")  # tried again: still held
        assert "(2 collect(s))" in next(c.detail for c in health(store, settings).checks if c.name == "batches")
        assert read_records(store) == [] and server.stats()["batches_created"] == 1
        server.config.lost_output = ""  # the provider's file reads again
        settled = collect(settings, store)
        billed = invoice(server)
    assert settled.startswith("1 batch(es) settled: 20 success(es), 0 reject(s)"), settled
    records = read_records(store)
    assert len(records) == len({r.id for r in records}) == 20 and {r.status for r in records} == {"success"}
    assert sum(round(r.cost_usd * 1e9) for r in records) == billed  # each answer paid once, booked once
    assert server.stats()["batches_created"] == 1 and outstanding(store) == []
    [check] = [c for c in health(store, settings).checks if c.name == "batches"]
    assert check.level == "green" and check.detail == "no outstanding batch"
    assert audit(store).ok


def batches_check(store: Store, settings: Any) -> Any:
    [check] = [c for c in health(store, settings).checks if c.name == "batches"]
    return check


@pytest.mark.parametrize("lost", LOST_ERRORS)
def test_an_unreadable_error_file_holds_its_batch_while_later_batches_settle(
    make_settings: Any, store: Store, lost: str
) -> None:
    read = 1 if lost == "broken" else 0  # a download broken off halfway gave the first of the two
    with fake_llm("sk-b", "500@Sample Widget 3", "503@Sample Widget 7") as server:  # two rejects in batch 0001
        server.config.lost_errors = lost
        settings = batch_settings(make_settings, server, batch_max_requests=10)
        assert run(settings, store).ok
        [planned] = [row for row in outstanding(store) if row["name"] == "0001"]
        line = collect(settings, store)
        assert line.startswith(f"1 batch(es) settled: 18 success(es), {read} reject(s)"), line  # 0002 settled
        assert line.endswith("1 outstanding (oldest 0.0 h); 1 held as unknown, their answers unreadable (see health)")
        assert [r.slug for r in read_records(store) if r.status == "reject"] == ["item-0003"][:read]
        assert [row["name"] for row in outstanding(store)] == ["0001"]  # still booked
        check = batches_check(store, settings)
        assert check.level == "amber" and f"{settings.run_id}/0001 (batch_" in check.detail, check.detail
        assert "its error file file-" in check.detail and "could not be read (could not download file" in check.detail
        assert f"${planned['reserved_usd']:.4f} stays booked" in check.detail
        server.config.lost_errors = ""  # the provider's file reads again
        settled = collect(settings, store)
        billed = invoice(server)
    assert settled.startswith(f"1 batch(es) settled: 0 success(es), {2 - read} reject(s)"), settled
    records = read_records(store)
    assert len(records) == len({r.id for r in records}) == 20 and outstanding(store) == []
    assert sorted(r.slug for r in records if r.status == "reject") == ["item-0003", "item-0007"]
    assert sum(round(r.cost_usd * 1e9) for r in records) == billed  # each answer paid once, booked once
    assert batches_check(store, settings).level == "green" and audit(store).ok
