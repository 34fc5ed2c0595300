"""A finished batch whose output file is missing or unreadable while the provider reports answered requests:
collect holds its outcomes as unknown (nothing settled as a $0 reject, its reservation still booked, health
names it) and settles them on a later collect once the file reads, each answer paid and recorded once."""

from __future__ import annotations

from typing import Any

import pytest

from content_pipeline.claims.pending import outstanding
from content_pipeline.ledger.scan import read_records
from content_pipeline.ops.health import health
from content_pipeline.store import Store
from content_pipeline.views.audit import audit
from tests.helpers import fake_llm, invoice, run
from tests.test_batch_mode import batch_settings, collect

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
