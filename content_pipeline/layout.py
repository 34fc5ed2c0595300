"""Where everything lives in the store: one place for every key name."""

from __future__ import annotations

LEDGER_PREFIX = "ledger/"
QUARANTINE_PREFIX = "quarantine/"
MASTER_SUCCESSES = "master/successes.jsonl"
MASTER_REJECTS = "master/rejects.jsonl"
PROCESSED_INDEX = "master/processed-slugs.txt"
REJECTED_INDEX = "master/rejected-slugs.txt"
USAGE = "master/usage.json"
TELEMETRY = "master/consolidation-telemetry.jsonl"
VIEWS_STATE = "master/views-state.json"
CHECKPOINT = "checkpoint.json"
QUEUE = "state/queue.json"
BATCH_LOCK = "locks/batch-builder.json"
CONSOLIDATE_LOCK = "locks/consolidate.json"


def ledger_dir(run_id: str) -> str:
    return f"{LEDGER_PREFIX}{run_id}/"


def run_key(run_id: str, name: str) -> str:
    """A per-run artifact: needs-content.jsonl, invalid-rows.jsonl, batch.jsonl, report.md, ..."""
    return f"runs/{run_id}/{name}"


def run_lock(run_id: str) -> str:
    """The lease a running run holds, so no second process runs under the same run id."""
    return f"locks/run-{run_id}.json"
