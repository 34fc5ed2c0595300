"""Stores damaged on purpose, on both backends: health names each fault in red, restore repairs what can be
repaired with no success lost and says what it could not, a second restore changes nothing, health is green
after; and a backup to a second store brings a deleted store back."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from content_pipeline.claims.queue import claim
from content_pipeline.errors import BadInputError
from content_pipeline.ops.backup import backup, backups, listing
from content_pipeline.ops.health import Health, health
from content_pipeline.ops.restore import restore, restore_from, restore_from_backup
from content_pipeline.settings import Settings
from content_pipeline.store import Store, layout, open_store
from content_pipeline.store.host import this_host
from content_pipeline.views.audit import audit
from content_pipeline.views.kept import kept_snapshots
from content_pipeline.views.snapshot import manifest_cell, read_manifest, read_master, read_view
from tests.conftest import make_item
from tests.support.helpers import dead_pid, hold, line_number, other_backend_url, run, segment_holding


def successes(store: Store) -> set[tuple[str, str]]:
    return set(read_master(store, "successes").select("slug", "id").iter_rows())


def view_key(store: Store, name: str) -> str:
    return read_manifest(store)["files"][name]


def lose_checkpoint(store: Store) -> str:
    store.delete(view_key(store, "checkpoint"))
    return "checkpoint"


def delete_manifest(store: Store) -> str:
    cell = manifest_cell(store)
    store.delete_many([cell.key(v) for v in cell.versions()])
    return "no manifest names the objects"


def edit_a_view(store: Store) -> str:
    key = view_key(store, "successes")
    data = store.get(key)
    store.put(key, data.replace(b"Meet the", b"Greet the", 1))
    return "master successes (master/objects/successes-"


def copy_a_reject_into_successes(store: Store) -> str:
    rejects, key = store.get(view_key(store, "rejects")), view_key(store, "successes")
    store.put(key, store.get(key) + rejects.splitlines(keepends=True)[0])
    return "master successes (master/objects/successes-"


def tear_a_tail(store: Store) -> str:
    writer = f"{this_host()}-{dead_pid()}-0badc0de"
    store.put(layout.ledger_segment("crashed-run", writer), b'{"id":"torn","run_id":"crashed-run","slug":"ite')
    return "torn tail(s) of gone writers"


def corrupt_the_middle_of_the_ledger(store: Store) -> str:
    key, data, start = segment_holding(store, "item-0007")
    end = data.index(b"\n", start)
    store.put(key, data[:start] + data[start:end].replace(b"Meet the", b"Meat the", 1) + data[end:])
    return f"{key}: line {line_number(data, start)}"


def leave_a_stale_lease(store: Store) -> str:
    hold(store, layout.BATCH_LOCK, this_host(), dead_pid(), "crashed-run", 300)
    return "lease locks/batch-builder of run crashed-run"


def leave_a_dead_runs_claims(store: Store) -> str:
    claim(store, "crashed-run", ["item-0003", "item-0004"], 2, dead_pid(), 3600)
    return "2 stale claim(s) of 1 gone run(s)"


FAULTS: dict[str, tuple[Callable[[Store], str], str]] = {
    "lost-checkpoint": (lose_checkpoint, "views"),
    "deleted-manifest": (delete_manifest, "views"),
    "view-edited-by-hand": (edit_a_view, "audit"),
    "reject-copied-into-successes": (copy_a_reject_into_successes, "audit"),
    "torn-ledger-tail": (tear_a_tail, "ledger"),
    "corrupt-ledger-middle": (corrupt_the_middle_of_the_ledger, "ledger"),
    "stale-lease": (leave_a_stale_lease, "leases"),
    "dead-runs-claims": (leave_a_dead_runs_claims, "claims"),
}


@pytest.fixture
def served(make_settings, write_catalogue) -> tuple[Settings, Store]:
    """A store after one green go-live: 24 successes and 4 rejects (the offline model refuses a category)."""
    rows = [make_item(n) for n in range(1, 25)] + [make_item(n, category="restricted") for n in range(25, 29)]
    settings = make_settings(catalogue=write_catalogue(rows))
    store = open_store(settings.store_url)
    report = run(settings, store)
    assert report.ok and report.stats.successes == 24 and report.stats.rejects == 4
    return settings, store


def check(result: Health, name: str) -> tuple[str, str]:
    found = next(c for c in result.checks if c.name == name)
    return found.level, found.detail


@pytest.mark.parametrize("fault", list(FAULTS))
def test_health_names_each_fault_in_red_and_restore_repairs_it(served, fault: str) -> None:
    settings, store = served
    assert health(store, settings).level == "green", health(store, settings).lines()
    before = successes(store)
    damage, name = FAULTS[fault]
    named = damage(store)

    sick = health(store, settings)
    level, detail = check(sick, name)
    assert level == "red" and named in detail, sick.lines()
    assert sick.exit_code == 2

    planned = restore(store, settings, dry_run=True)
    assert planned.changes and planned.kept is None and health(store, settings).level == "red"  # changed nothing
    first = restore(store, settings)
    assert first.changes and first.ok, first.lines()
    if fault == "deleted-manifest":
        assert first.kept is None  # no manifest to keep
    else:
        assert first.kept in [k.id for k in kept_snapshots(store)]
    second = restore(store, settings)
    assert second.changes == [] and second.kept is None and second.audit.ok  # a second restore changes nothing
    assert successes(store) == before  # no success lost
    well = health(store, settings)
    assert well.level == "green" and well.exit_code == 0, well.lines()


def test_a_fault_restore_cannot_repair_is_said_and_stays_red(served) -> None:
    settings, store = served
    key, data, start = segment_holding(store, "item-0009")
    end = data.index(b"\n", start)
    store.put(key, data[:start] + data[start:end].replace(b"Meet the", b"Meat the", 1) + data[end:])
    for name in ("successes", "rejects"):  # no copy of the record left anywhere to write back
        for info in store.list(layout.VIEW_OBJECTS):
            if info.key.startswith(f"{layout.VIEW_OBJECTS}{name}-"):
                store.delete(info.key)
    result = restore(store, settings)
    where = f"{key}: line {line_number(data, start)}"
    assert not result.ok and any(line.startswith(where) and "slug item-0009 held" in line for line in result.could_not)
    assert f"could not repair: {result.could_not[0]}" in result.lines()
    assert check(health(store, settings), "ledger")[0] == "red"
    assert (
        "item-0009" not in dict(successes(store)) and "item-0009" in json.loads(read_view(store, "checkpoint"))["held"]
    )


def test_restore_from_a_kept_snapshot_rolls_the_views_back(served, write_catalogue) -> None:
    settings, store = served
    leave_a_stale_lease(store)
    early = restore(store, settings).kept  # the views of the first run, kept
    first_run = successes(store)
    more = write_catalogue([make_item(n) for n in range(1, 35)], "more.jsonl")
    assert (
        run(settings.model_copy(update={"catalogue": more, "run_id": "later"}), store).stats.successes == 6
    )  # 29-34: 25-28 were rejected
    rolled = restore_from(store, settings, early)
    assert rolled.changes == [f"view {n} rolled back to snapshot {early}" for n in ROLLED]
    assert successes(store) == first_run and rolled.kept in [k.id for k in kept_snapshots(store)]
    assert restore_from(store, settings, early).changes == []  # already there
    with pytest.raises(BadInputError, match="restore --from nope: no such kept snapshot"):
        restore_from(store, settings, "nope")


ROLLED = ["checkpoint", "processed", "successes", "usage"]  # what the later run changed (it rejected nothing)


@pytest.mark.s3  # the backup goes to the other backend: S3 for a folder store
def test_a_backup_brings_a_deleted_store_back(served, backend, tmp_path, request) -> None:
    settings, store = served
    target = open_store(other_backend_url(backend, tmp_path, request))
    before = successes(store)
    first = backup(store, target)
    assert first["copied"] == len(listing(store)) and first["failed"] == 0
    backed = {info.key: info.version for info in listing(store)}
    run(settings.model_copy(update={"run_id": "second-run"}), store)  # nothing new to generate; its run files
    now = {info.key: info.version for info in listing(store)}
    changed = [key for key, version in now.items() if backed.get(key) != version]
    again = backup(store, target)
    assert 0 < again["copied"] == len(changed) < first["copied"]  # incremental: only what is new or changed
    assert again["unchanged"] == len(now) - len(changed)
    assert [b["id"] for b in backups(store)] == [first["id"], again["id"]] == [b["id"] for b in backups(target)]

    store.delete_many([info.key for info in store.list("")])  # the first store is lost
    assert store.list("") == []
    result = restore_from_backup(store, target, settings)
    assert result.ok, result.lines()
    assert result.changes[0].startswith("brought back ")
    assert successes(store) == before and audit(store).ok
    assert json.loads(store.get(layout.LAST_GO_LIVE))["run_id"] == "second-run"
