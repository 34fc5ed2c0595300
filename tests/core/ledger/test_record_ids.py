"""Every attempt ever made has a record id of its own, and the audit checks it: two ledger records under one
id cannot be told apart by the checks that go by id."""

from __future__ import annotations

from content_pipeline.ledger.scan import read_records
from content_pipeline.store import Store
from content_pipeline.views.audit import audit
from content_pipeline.views.consolidate import consolidate
from tests.conftest import make_item
from tests.support.helpers import fake_llm, record, run, write_ledger


def test_two_records_under_one_id_break_the_audit(store: Store) -> None:
    first = record("item-0001", "reject", reason="length", retryable=True)
    again = record("item-0001", at="2026-11-23T00:00:09")  # another attempt, given the first one's id
    assert first.id == again.id
    write_ledger(store, [first, again, record("item-0002")])
    consolidate(store)
    found = audit(store)
    assert found.violations == ["invariant 1: ledger record id(s) held by more than one record: item-0001"]


def test_a_retryable_reject_run_again_under_the_same_run_id_gets_an_id_of_its_own(
    make_settings, store: Store, write_catalogue
) -> None:
    catalogue = write_catalogue([make_item(n) for n in range(1, 4)])
    with fake_llm("sk-k", "500@Widget 2*2") as server:  # item 2 fails twice: a retryable reject
        settings = make_settings(openai_api_key="sk-k", openai_base_url=server.url, max_retries=1, catalogue=catalogue)
        first = run(settings, store)
        assert first.ok and first.stats.rejects == 1
        second = run(settings, store)  # the same --run-id: the reject is generated again
    assert second.ok and second.stats.successes == 1
    records = read_records(store)
    assert {r.run_id for r in records} == {settings.run_id} and len(records) == 4
    assert len({r.id for r in records}) == len(records)
    assert audit(store).ok
