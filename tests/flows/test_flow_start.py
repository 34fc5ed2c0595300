"""A deployment run that cannot start (a bad store, bad settings) or whose catalogue is broken ends Failed with
the one line the CLI prints, naming the stage and the spend, not a traceback in the flow run."""

from __future__ import annotations

from pathlib import Path

import pytest

from content_pipeline.ledger.scan import read_records
from content_pipeline.store import open_store
from flows import pipeline

pytestmark = pytest.mark.server


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"STORE_URL": "s3://no-such-bucket-here/p"},
            "start: STORE_URL s3://no-such-bucket-here/p: bucket 'no-such-bucket-here' does not exist "
            "(spent $0.00 of $5.00)",
        ),
        ({"CONCURRENCY": "0"}, "start: setting CONCURRENCY: Input should be greater than or equal to 1"),
    ],
)
def test_a_run_that_cannot_start_fails_with_one_line(prefect_server, s3_endpoint, monkeypatch, tmp_path, env, message):
    monkeypatch.setenv("STORE_URL", str(tmp_path / "store"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    state = pipeline.go_live(limit=5, budget_usd=5, run_id="cannot-start", return_state=True)
    assert state.is_failed() and state.message.startswith(message), state.message
    assert "\n" not in state.message and "Traceback" not in state.message


def test_a_broken_catalogue_fails_the_flow_run_naming_the_stage(prefect_server, monkeypatch, store_url, tmp_path):
    empty = Path(tmp_path / "empty.jsonl")
    empty.write_bytes(b"")
    monkeypatch.setenv("STORE_URL", store_url)
    monkeypatch.setenv("CATALOGUE", str(empty))
    state = pipeline.go_live(run_id="empty-catalogue", return_state=True)
    assert state.is_failed()
    assert state.message == (
        f"inventory: catalogue {empty} is empty: no rows (is it the right file?) (spent $0.0000 of $250.00)"
    )
    assert read_records(open_store(store_url)) == []  # nothing generated, nothing paid
