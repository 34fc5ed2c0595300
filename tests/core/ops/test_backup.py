"""Backups as an operator relies on them: publishing's state (the attempt log, take-downs, the halt) comes
back with the rest, two backups brought back leave the state the operator left; every object is checked
against the backup's record and a signed record cannot be forged; targets inside the store are refused."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cli.main import main as cli_main
from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.log import append_days, read_log
from content_pipeline.errors import BadInputError
from content_pipeline.ops.backup import backup, backups, listing
from content_pipeline.ops.restore import restore_from_backup
from content_pipeline.publish.halt import halt, halted, resume
from content_pipeline.publish.history import read_history
from content_pipeline.publish.holds import hold, holds, release
from content_pipeline.publish.log import AttemptLog
from content_pipeline.publish.targets import RemotePost
from content_pipeline.settings import Settings, load_settings
from content_pipeline.store import Store, layout, open_store
from content_pipeline.views.snapshot import load_manifest
from tests.conftest import make_item, snapshot
from tests.support.cli_helpers import base_env
from tests.support.cli_helpers import run as cli
from tests.support.helpers import other_backend_url, run

KEY = "backup-signing-key-for-tests-0123456789"
OPERATOR = "ops@shop"


class OnePost:
    """A target holding the post of each slug: a quarantine takes it down (turned to draft)."""

    name = "wordpress"

    def find(self, slug: str, post_id: str | None) -> RemotePost:
        return RemotePost(f"id-{slug}", None, "publish", 200)

    def take_down(self, found: RemotePost, slug: str, trash: bool) -> RemotePost:
        return RemotePost(found.post_id, None, "draft", 200)


def take_down(store: Store, log: AttemptLog, slug: str) -> None:
    target: Any = OnePost()
    hold(store, log, target, read_history(store), slug, "wrong price", OPERATOR, trash=False)


def published(log: AttemptLog, slug: str, result: str = "created") -> None:
    """An outcome line of a post gone live, as a publish run writes it."""
    fields = {"key": f"k-{slug}", "target": "wordpress", "slug": slug, "content_hash": f"h-{slug}", "live": True}
    log.write("outcome", **fields, result=result, post_id=f"id-{slug}", link=f"https://shop/{slug}")


def log_lines(store: Store) -> set[str]:
    return {json.dumps(line, sort_keys=True) for line in read_history(store).lines}


@pytest.fixture
def generated(make_settings, write_catalogue) -> tuple[Settings, Store]:
    """A store after one go-live of 6 items."""
    settings = make_settings(catalogue=write_catalogue([make_item(n) for n in range(1, 7)]))
    store = open_store(settings.store_url)
    assert run(settings, store).ok
    return settings, store


@pytest.mark.s3  # the backup goes to the other backend: S3 for a folder store
@pytest.mark.parametrize("order", ["older-first", "newer-first"])
def test_two_backups_bring_publishing_back_as_the_operator_left_it(
    generated, backend: str, tmp_path: Path, request: pytest.FixtureRequest, order: str
) -> None:
    settings, store = generated
    older = open_store(other_backend_url(backend, tmp_path, request) + "-older")
    newer = open_store(other_backend_url(backend, tmp_path, request) + "-newer")
    log = AttemptLog(store, "publish-run")
    for n in range(1, 5):
        published(log, f"item-000{n}")
    take_down(store, log, "item-0002")
    take_down(store, log, "item-0003")
    halt(store, "incident 1", OPERATOR)
    backup(store, older)  # taken before the events below
    release(store, log, "item-0003", OPERATOR)
    published(log, "item-0003", "updated")  # back live after its release
    resume(store)
    take_down(store, log, "item-0004")
    halt(store, "incident 2", OPERATOR)
    backup(store, newer)
    log.close()
    left = log_lines(store)

    store.delete_many([info.key for info in store.list("")])  # the store is lost
    said = []
    for target in (older, newer) if order == "older-first" else (newer, older):
        result = restore_from_backup(store, target, settings)
        assert result.ok, result.lines()
        said += result.changes
    assert [line for line in said if "item-0003" in line and "the attempt log has its release" in line]
    assert sorted(holds(store)) == ["item-0002", "item-0004"]  # taken down stays down; a release stands
    assert "incident 2" in (halted(store) or "")  # the halt stays on
    assert log_lines(store) == left  # the whole attempt log, once
    history = read_history(store)
    live = {slug for (_, slug), state in history.posts.items() if state.live_hash}
    assert live == {"item-0001", "item-0003"} and history.pending == []  # nothing live is sent again


@pytest.mark.s3  # the backup goes to the other backend: S3 for a folder store
def test_a_backup_holds_publishing_state(generated, backend, tmp_path, request) -> None:
    _, store = generated
    log = AttemptLog(store, "publish-run")
    published(log, "item-0001")
    take_down(store, log, "item-0001")
    log.close()
    halt(store, "incident 3", OPERATOR)
    target = open_store(other_backend_url(backend, tmp_path, request))
    done = backup(store, target)
    held = {info.key for info in listing(target, (layout.PUBLISH_PREFIX,))}
    assert layout.publish_quarantine("item-0001") in held and any(k.startswith(layout.PUBLISH_HALT) for k in held)
    assert any(k.startswith(layout.PUBLISH_ATTEMPTS) for k in held) and done["signed"] is False
    assert not any(k.startswith(layout.LOCKS_PREFIX) for k in {i.key for i in target.list("")})  # no live leases


def signing(settings: Settings) -> Settings:
    return settings.model_copy(update={"backup_signing_key": SecretStr(KEY)})


def emptied(store: Store) -> None:
    store.delete_many([info.key for info in store.list("")])


def refused(store: Store, target: Store, settings: Settings, *says: str) -> str:
    """Restore from `target` is refused with one line saying each of `says`, and the store is unchanged."""
    before = snapshot(store)
    with pytest.raises(BadInputError) as caught:
        restore_from_backup(store, target, settings)
    line = str(caught.value)
    assert "\n" not in line and all(s in line for s in says) and "nothing changed" in line, line
    assert snapshot(store) == before and KEY not in line
    return line


def record_key(target: Store) -> str:
    """The key of the newest backup's record in `target`."""
    return f"{layout.BACKUPS_PREFIX}{backups(target)[-1]['id']}.json"


@pytest.mark.s3  # the backup goes to the other backend: S3 for a folder store
def test_an_object_that_does_not_match_the_record_is_refused_naming_it(generated, backend, tmp_path, request) -> None:
    settings, store = generated
    target = open_store(other_backend_url(backend, tmp_path, request))
    backup(store, target)
    segment = next(i.key for i in listing(target, (layout.LEDGER_PREFIX,)))
    data = target.get(segment) or b""
    target.put(segment, data.replace(b"Meet the", b"Beat the", 1))  # same size, other bytes
    view = next(i.key for i in target.list(layout.VIEW_OBJECTS))
    target.delete(view)
    emptied(store)
    refused(store, target, settings, f"{segment}: its sha256 is not the recorded one", f"{view}: missing")
    assert store.list("") == []


@pytest.fixture
def signed(generated, backend, tmp_path, request) -> tuple[Settings, Store, Store]:
    """Settings with BACKUP_SIGNING_KEY set, the generated store, and a backup target on the other backend."""
    settings, store = generated
    return signing(settings), store, open_store(other_backend_url(backend, tmp_path, request))


@pytest.mark.s3  # the backup goes to the other backend: S3 for a folder store
def test_a_signed_backup_cannot_be_forged_into_the_store(signed) -> None:
    keyed, store, target = signed
    done = backup(store, target, keyed.backup_signing_key)
    assert done["signed"] and KEY.encode() not in b"".join(snapshot(target).values())

    record = json.loads(target.get(record_key(target)) or b"")
    segment = next(k for k in record["objects"] if k.startswith(layout.LEDGER_PREFIX))
    forged = (target.get(segment) or b"").replace(b"Meet the", b"Hacked: the", 1)  # a plain sha256 recomputed
    target.put(segment, forged)
    record["objects"][segment].update(size=len(forged), sha256=hashlib.sha256(forged).hexdigest())
    target.put(record_key(target), json.dumps(record).encode())
    refused(store, target, keyed, f"backup {record['id']} fails its signature check")

    record.pop("signature")  # an unsigned record, while a key is set
    target.put(record_key(target), json.dumps(record).encode())
    refused(store, target, keyed, f"backup {record['id']} is not signed, and BACKUP_SIGNING_KEY is set")

    again = backup(store, target, keyed.backup_signing_key)  # the edited record is not trusted: all copied anew
    assert again["unchanged"] == 0 and again["copied"] == again["objects_total"] > 0
    assert target.get(segment) == store.get(segment)


@pytest.mark.s3  # the backup goes to the other backend: S3 for a folder store
def test_a_signed_backup_restores_and_the_next_backup_is_incremental(signed) -> None:
    keyed, store, target = signed
    first = backup(store, target, keyed.backup_signing_key)
    second = backup(store, target, keyed.backup_signing_key)
    assert second["copied"] < first["copied"] and second["unchanged"] > 0
    before = {info.key: store.get(info.key) for info in listing(store)}
    emptied(store)
    result = restore_from_backup(store, target, keyed)
    assert result.ok and any("its signature checked with BACKUP_SIGNING_KEY" in line for line in result.changes)
    assert all(store.get(key) == data for key, data in before.items())
    unsigned = restore_from_backup(
        store, target, keyed.model_copy(update={"backup_signing_key": None})
    )  # no key here: restored, said unchecked
    assert any("its signature was not checked" in line for line in unsigned.changes)


@pytest.mark.s3  # the backup goes to the other backend: S3 for a folder store
def test_an_object_changed_in_the_target_is_copied_again_by_the_next_backup(
    generated, backend, tmp_path, request
) -> None:
    settings, store = generated
    target = open_store(other_backend_url(backend, tmp_path, request))
    backup(store, target)
    segment = next(i.key for i in listing(target, (layout.LEDGER_PREFIX,)))
    target.put(segment, (target.get(segment) or b"").replace(b"Meet the", b"Beat the", 1))  # record untouched
    again = backup(store, target)
    assert again["copied"] == 1 and target.get(segment) == store.get(segment)  # the damaged copy is replaced
    emptied(store)
    assert restore_from_backup(store, target, settings).ok


@pytest.mark.s3  # the backup goes to the other backend: S3 for a folder store
def test_a_copy_that_fails_its_check_stops_the_restore_with_one_line(
    generated, backend, tmp_path, request, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, store = generated
    target = open_store(other_backend_url(backend, tmp_path, request))
    backup(store, target)
    record = json.loads(target.get(record_key(target)) or b"")
    names = sorted(record["objects"])
    chosen = (load_manifest(store)[0] or {})["files"]["successes"]  # the current view of the successes
    before = {key: target.get(key) for key in names[: names.index(chosen)]}  # what is copied before it
    assert any(key.startswith(layout.LEDGER_PREFIX) for key in before)
    emptied(store)
    # One command reads each object twice, with nothing in between a test could hook: once to verify the
    # whole backup, once to copy it. Only the read itself can land a change between the two: the target's
    # second read of the chosen object gives other bytes (same size), as if the backup had changed since.
    original, reads = type(target).get_range, [0]

    def get_range(self: Store, key: str, start: int, end: int) -> bytes:
        data = original(self, key, start, end)
        if self.url != target.url or key != chosen or start != 0:
            return data
        reads[0] += 1
        return data if reads[0] == 1 else bytes([data[0] ^ 0xFF]) + data[1:]

    monkeypatch.setattr(type(target), "get_range", get_range)
    monkeypatch.setenv("STORE_URL", store.url)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    code = cli_main(["restore", "--from-backup", target.url])
    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert code == 2 and reads[0] == 2, err
    assert line.startswith(f"error: restore --from-backup {target.url}: backup {record['id']}: {chosen}: "), line
    assert line.endswith(
        f"stopped; {len(before)} object(s) already brought back are kept, each checked; "
        "run restore --from-backup again once the backup is sound"
    ), line
    assert snapshot(store) == before  # nothing after it, and not the changed object
    assert out == ""  # no view rebuilt, no audit: the restore went no further
    assert cli_main(["restore", "--list"]) == 0  # a rebuild keeps the current view snapshot first: none kept
    assert capsys.readouterr().out == "restore: no view snapshot is kept\n"


def shell(tmp_path: Path, store: str) -> dict[str, str]:
    return {**base_env(tmp_path), "STORE_URL": store}


@pytest.mark.slow  # runs the command line as processes
def test_bad_targets_are_refused_with_one_line(tmp_path: Path) -> None:
    store = tmp_path / "data"
    store.mkdir()
    env = shell(tmp_path, str(store))
    cases: list[tuple[list[str], str]] = [
        (["backup", "--to", str(store / "backup")], "the target is inside the store"),
        (["backup", "--to", str(tmp_path)], f"the store {store} is inside the target"),
        (["backup", "--to", f"{store}/../data"], "that is the store itself"),
        (["restore", "--from-backup", str(tmp_path / "nowhere")], "no such folder: nothing changed"),
        (["restore", "--from-backup", str(tmp_path / "empty")], "no backup there"),
        (["restore", "--from-backup", str(store / "old")], "the target is inside the store"),
    ]
    (tmp_path / "empty").mkdir()
    for args, says in cases:
        done = cli(env, *args)
        [line] = done.stderr.splitlines()
        assert done.returncode != 0 and line.startswith(f"error: {args[0]} {args[1]} ") and says in line, done.stderr
    assert not (store / "backup").exists() and not (tmp_path / "nowhere").exists() and not (store / "old").exists()


def test_an_s3_target_under_the_s3_store_is_refused(s3_url: str, tmp_path: Path) -> None:
    env = shell(tmp_path, s3_url)
    inside = cli(env, "backup", "--to", f"{s3_url}/backup")
    assert inside.returncode == 2 and "the target is inside the store" in inside.stderr, inside.stderr
    holds = cli(env, "restore", "--from-backup", s3_url.rsplit("/", 1)[0])
    assert holds.returncode == 2 and "is inside the target: refused" in holds.stderr, holds.stderr
    beside = cli(env, "backup", "--to", f"{s3_url}-backup")  # a prefix beside the store's, not under it
    assert beside.returncode == 0 and "its record not signed" in beside.stdout, beside.stderr
    assert [b["to"] for b in backups(open_store(s3_url))] == [f"{s3_url}-backup"]


def test_a_short_signing_key_is_refused_without_showing_it() -> None:
    with pytest.raises(BadInputError) as caught:
        load_settings(backup_signing_key="short-key")
    assert "BACKUP_SIGNING_KEY" in str(caught.value) and "short-key" not in str(caught.value)
    assert load_settings(backup_signing_key="  ").backup_signing_key is None


def test_the_command_line_backs_up_to_backup_url_when_no_target_is_given(generated, tmp_path, monkeypatch, capsys):
    """BACKUP_URL is the backup's target at both front doors (the flow took it, the terminal demanded --to);
    with neither, one line says how to give one."""
    _, store = generated
    monkeypatch.setenv("STORE_URL", store.url)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("BACKUP_URL", raising=False)
    assert cli_main(["backup"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: backup: no target: set BACKUP_URL or give one (--to URL; the flow's `to` parameter)"
    )
    monkeypatch.setenv("BACKUP_URL", str(tmp_path / "nightly"))
    assert cli_main(["backup"]) == 0
    assert f", to {tmp_path / 'nightly'}; its record not signed" in capsys.readouterr().out
    [entry] = backups(open_store(str(tmp_path / "nightly")))
    assert entry["copied"] > 0 and entry["to"] == str(tmp_path / "nightly")


def test_a_backup_holds_the_engagement_log(store: Store, tmp_path) -> None:
    day = PostDay(source="plausible", slug="item-0001", day=date(2026, 12, 1), metrics={"visitors": 12.0})
    append_days(store, "plausible", [day])
    target = open_store(str(tmp_path / "engagement-backup"))
    backup(store, target)
    assert [info.key for info in listing(target, (layout.ENGAGEMENT_PREFIX,))]
    assert read_log(target).days() == [day]  # a source may not give old days again: the backup keeps them
