"""Where everything lives in the store: one place for every key name."""

from __future__ import annotations

LEDGER_PREFIX = "ledger/"
QUARANTINE_PREFIX = "quarantine/"
TELEMETRY = "master/consolidation-telemetry.jsonl"
MANIFEST = "master/manifest.json"
VIEW_OBJECTS = "master/objects/"
# The views one consolidation publishes together, by name and file name. Their bytes live in immutable
# objects named by their digest; the manifest says which objects are current.
VIEW_FILES = {
    "successes": "successes.jsonl",
    "rejects": "rejects.jsonl",
    "processed": "processed-slugs.txt",
    "rejected": "rejected-slugs.txt",
    "usage": "usage.json",
    "checkpoint": "checkpoint.json",
}
# Where views lived before they were published as snapshots; removed by the first publication.
LEGACY_VIEWS = (
    "master/successes.jsonl",
    "master/rejects.jsonl",
    "master/processed-slugs.txt",
    "master/rejected-slugs.txt",
    "master/usage.json",
    "master/views-state.json",
    "checkpoint.json",
)
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


def view_object(name: str, digest: str) -> str:
    """The immutable object holding one view's bytes: `master/objects/successes-<digest>.jsonl`."""
    stem, _, ext = VIEW_FILES[name].rpartition(".")
    return f"{VIEW_OBJECTS}{stem}-{digest[:24]}.{ext}"
