"""Where everything lives in the store: one place for every key name."""

from __future__ import annotations

LEDGER_PREFIX = "ledger/"
QUARANTINE_PREFIX = "quarantine/"
MASTER_PREFIX = "master/"
TELEMETRY = f"{MASTER_PREFIX}consolidation-telemetry.jsonl"
# cells (store/cell.py): each a folder of numbered versions, the highest current
MANIFEST = f"{MASTER_PREFIX}manifest"
LEGACY_MANIFEST = f"{MASTER_PREFIX}manifest.json"  # the manifest before it had versions
VIEW_OBJECTS = f"{MASTER_PREFIX}objects/"
KEPT_VIEWS = f"{MASTER_PREFIX}kept/"  # view snapshots kept by a restore (views/kept.py)
# The views one consolidation publishes together, by name and file name. Their bytes live in immutable
# objects named by their digest; the manifest says which objects are current.
VIEW_FILES = {
    "successes": "successes.jsonl",
    "rejects": "rejects.jsonl",
    "processed": "processed-slugs.txt",
    "rejected": "rejected-slugs.txt",
    "usage": "usage.json",
    "checkpoint": "checkpoint.json",
    "superseded": "superseded.json",
}
# Where views lived before they were published as snapshots; removed by the first publication.
LEGACY_VIEWS = (
    f"{MASTER_PREFIX}successes.jsonl",
    f"{MASTER_PREFIX}rejects.jsonl",
    f"{MASTER_PREFIX}processed-slugs.txt",
    f"{MASTER_PREFIX}rejected-slugs.txt",
    f"{MASTER_PREFIX}usage.json",
    f"{MASTER_PREFIX}views-state.json",
    "checkpoint.json",
)
STATE_PREFIX = "state/"
QUEUE = f"{STATE_PREFIX}queue"
LEGACY_QUEUE = f"{STATE_PREFIX}queue.json"
LAST_GO_LIVE = f"{STATE_PREFIX}last-go-live.json"  # the summary of the go-live run that ended last
LOCKS_PREFIX = "locks/"
BATCH_LOCK = f"{LOCKS_PREFIX}batch-builder"
CONSOLIDATE_LOCK = f"{LOCKS_PREFIX}consolidate"
RUNS_PREFIX = "runs/"
HEALTH_PREFIX = "health/"  # health's probe objects (each deleted once read back)
BACKUPS_PREFIX = "backups/"  # the record of each backup (ops/backup.py), in the store and its target
TEMPLATES_PREFIX = "templates/"  # prompt templates, the active set and the ranking decisions
TEMPLATE_VERSIONS = f"{TEMPLATES_PREFIX}versions/"  # one object per template version: <id>/<version>.json
ACTIVE_TEMPLATES = f"{TEMPLATES_PREFIX}active"  # a cell: the active templates and their weights
TEMPLATE_DECISIONS = f"{TEMPLATES_PREFIX}decisions/"  # each template-rank decision with its evidence
REPORTS_PREFIX = "reports/"  # KPI and cost reports with their charts
PUBLISH_PREFIX = "publish/"
PUBLISH_HALT = f"{PUBLISH_PREFIX}halt"  # a cell: why publishing is halted, by whom, since when
PUBLISH_WINDOW = f"{PUBLISH_PREFIX}window"  # a cell: live publishing approved until when, by whom
PUBLISH_UI_REQUIRED = f"{PUBLISH_PREFIX}ui-required"  # a cell: a UI approval required until when, and why
PUBLISH_ATTEMPTS = f"{PUBLISH_PREFIX}attempts/"  # the append-only attempt log: <run>/<writer>.signed.jsonl
PUBLISH_QUARANTINE = f"{PUBLISH_PREFIX}quarantine/"  # one object per quarantined slug: <slug>.json
SEGMENT_SUFFIX = ".jsonl"
# the files a run writes under runs/<run>/
NEEDS_CONTENT = "needs-content.jsonl"
INVALID_ROWS = "invalid-rows.jsonl"
BATCH = "batch.jsonl"
REPORT = "report.md"


def ledger_dir(run_id: str) -> str:
    return f"{LEDGER_PREFIX}{run_id}/"


SIGNED = ".signed"  # in a segment's name: every line of it carries its checksum (ledger/checksum.py)


def ledger_segment(run_id: str, writer: str) -> str:
    """One writer's segment of a run's ledger; `writer` is `<host>-<pid>-<random>`."""
    return f"{ledger_dir(run_id)}{writer}{SIGNED}{SEGMENT_SUFFIX}"


def is_signed(key: str) -> bool:
    """Whether the lines of a ledger object must carry checksums (on S3 each append is an object in the
    segment's folder: `<writer>.signed/<token>.jsonl`); segments written before checksums do not."""
    return key.endswith(SIGNED + SEGMENT_SUFFIX) or f"{SIGNED}/" in key


def segment_writer(key: str) -> str:
    """The `<host>-<pid>-<random>` part of a segment's key."""
    return key.rsplit("/", 1)[-1].removesuffix(SEGMENT_SUFFIX).removesuffix(SIGNED)


INTENTS_PREFIX = "intents/"


def intents_log(run_id: str, writer: str) -> str:
    """One writer's log of the calls it put in flight for a run (ledger/intents.py), beside its segment."""
    return f"{INTENTS_PREFIX}{run_id}/{writer}{SIGNED}{SEGMENT_SUFFIX}"


def intents_writer(key: str) -> tuple[str, str] | None:
    """(run id, writer) of an object of an intents log (on S3 each append is an object in the log's folder)."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] + "/" != INTENTS_PREFIX or SIGNED not in parts[2]:
        return None
    return parts[1], parts[2].split(SIGNED, 1)[0]


def is_segment(key: str) -> bool:
    return key.startswith(LEDGER_PREFIX) and key.endswith(SEGMENT_SUFFIX)


def torn_tail(key: str, at: int) -> str:
    """Where the torn final line of segment `key`, cut at byte `at`, is kept."""
    return f"{QUARANTINE_PREFIX}{key}.torn-at-{at}"


ACCEPTED_LOSSES = f"{QUARANTINE_PREFIX}accepted/"  # an operator's acceptance of a damaged record's loss
BOOKED_LOSSES = f"{QUARANTINE_PREFIX}booked/"  # a damaged record's cost, kept in spend (views/booked.py)
_DAMAGED = ".line-"


def damaged_record(key: str, line: int) -> str:
    """Where a copy of damaged line `line` (0-based) of ledger segment `key` is kept."""
    return f"{QUARANTINE_PREFIX}{key}{_DAMAGED}{line + 1}"


def damaged_where(kept: str) -> str | None:
    """`<segment>: line N` for a quarantine key made by `damaged_record` (None for any other key)."""
    if not kept.startswith(QUARANTINE_PREFIX + LEDGER_PREFIX):
        return None
    key, _, number = kept[len(QUARANTINE_PREFIX) :].rpartition(_DAMAGED)
    return f"{key}: line {number}" if key and number.isdigit() else None


def attempts_log(run_id: str, writer: str) -> str:
    """One writer's part of the publish attempt log for a run."""
    return f"{PUBLISH_ATTEMPTS}{run_id}/{writer}{SIGNED}{SEGMENT_SUFFIX}"


def publish_quarantine(slug: str) -> str:
    """Where an item's publish quarantine (reason, by whom, when) is kept while it lasts."""
    return f"{PUBLISH_QUARANTINE}{slug}.json"


BATCHES_PREFIX = "batches/"  # each run's Batch API requests: batches/<run>/<name>/ holds the four below
BATCH_PLAN = "plan.json"  # the requests (record id, item, worst case) and the money reserved for them
BATCH_INPUT = "input.jsonl"  # the file uploaded: exactly these bytes, however often it is uploaded
BATCH_SUBMITTED = "batch.json"  # the provider's batch id, recorded once it was created (never submitted again)
BATCH_COLLECTED = "collected.json"  # how the batch ended, once every outcome of it is in the ledger


def batch_key(run_id: str, name: str, part: str) -> str:
    """One object of one planned batch: BATCH_PLAN, BATCH_INPUT, BATCH_SUBMITTED or BATCH_COLLECTED."""
    return f"{BATCHES_PREFIX}{run_id}/{name}/{part}"


def run_dir(run_id: str) -> str:
    return f"{RUNS_PREFIX}{run_id}/"


def run_key(run_id: str, name: str) -> str:
    """A per-run artifact: NEEDS_CONTENT, INVALID_ROWS, BATCH, REPORT."""
    return f"{run_dir(run_id)}{name}"


def publish_lock(target: str) -> str:
    """The lease one publish run (or a quarantine's take-down) holds per target, so two workers never send
    the same post at once."""
    return f"{LOCKS_PREFIX}publish-{target}"


def run_lock(run_id: str) -> str:
    """The lease a running run holds, so no second process runs under the same run id."""
    return f"{LOCKS_PREFIX}run-{run_id}"


def view_object(name: str, digest: str) -> str:
    """The immutable object holding one view's bytes: `master/objects/successes-<digest>.jsonl`."""
    stem, _, ext = VIEW_FILES[name].rpartition(".")
    return f"{VIEW_OBJECTS}{stem}-{digest[:24]}.{ext}"


ENGAGEMENT_PREFIX = "engagement/"  # what readers did: <source>/<writer>.signed.jsonl, one line per post and day


def engagement_log(source: str, writer: str) -> str:
    """One writer's part of the engagement log of a source (plausible, search-console, import)."""
    return f"{ENGAGEMENT_PREFIX}{source}/{writer}{SIGNED}{SEGMENT_SUFFIX}"


_AREAS = (
    (CONSOLIDATE_LOCK, "views"),
    (MASTER_PREFIX, "views"),
    (LEDGER_PREFIX, "ledger"),
    (QUARANTINE_PREFIX, "ledger"),
    (INTENTS_PREFIX, "intents"),
    (STATE_PREFIX, "claims"),
    (LOCKS_PREFIX, "leases"),
    (RUNS_PREFIX, "run files"),
    (PUBLISH_PREFIX, "publishing"),
    (BATCHES_PREFIX, "batches"),
    (ENGAGEMENT_PREFIX, "engagement"),
)


def area(key: str) -> str:
    """Which part of the store a key belongs to (ledger, intents, views, claims, leases, run files), for
    counting requests."""
    return next((name for prefix, name in _AREAS if key.startswith(prefix)), "other")
