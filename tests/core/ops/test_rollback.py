"""`templates rollback` (playbook B3): each change of the active set is recorded (templates --add, template-rank
--apply, a rollback); a rollback brings back the set before the newest change that made the current one, walks
further back when run again, or brings back the set a named change made; a damaged record is named, not
trusted; with nothing recorded it says so and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from content_pipeline.generation.templates import DEFAULT, read_active
from content_pipeline.ops.rollback import history
from content_pipeline.store import Store, layout

A, B, C = DEFAULT.key, "catalogue-item:2", "short-copy:1"


@pytest.fixture
def cli(store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("STORE_URL", store_url)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def template_file(tmp_path: Path, key: str) -> str:
    template_id, version = key.split(":")
    path = tmp_path / f"{template_id}-{version}.json"
    body = {"id": template_id, "version": version, "system": DEFAULT.system + f" ({key})", "user": DEFAULT.user}
    path.write_text(json.dumps(body))
    return str(path)


def test_rollback_walks_back_through_the_recorded_changes(store: Store, cli, tmp_path: Path) -> None:
    assert cli("templates", "--add", template_file(tmp_path, B))[0] == 0
    assert cli("templates", "--add", template_file(tmp_path, C))[0] == 0
    assert read_active(store)[0] == {A: 1, B: 1, C: 1}
    changes = history(store).changes
    assert [(c.kind, c.before, c.after) for c in changes] == [
        ("add", {A: 1}, {A: 1, B: 1}),
        ("add", {A: 1, B: 1}, {A: 1, B: 1, C: 1}),
    ]
    code, out, _ = cli("templates")
    assert code == 0 and f"change {changes[0].id}" in out and f"change {changes[1].id}" in out

    code, out, _ = cli("templates", "rollback")
    assert code == 0 and f"active set {{'{A}': 1, '{B}': 1, '{C}': 1}} -> {{'{A}': 1, '{B}': 1}}" in out
    assert f"(the set before change {changes[1].id} (add," in out
    assert read_active(store)[0] == {A: 1, B: 1}
    assert cli("templates", "rollback")[0] == 0 and read_active(store)[0] == {A: 1}  # further back, not a toggle
    kinds = [c.kind for c in history(store).changes]
    assert kinds == ["add", "add", "rollback", "rollback"]

    code, out, _ = cli("templates", "rollback", "--to", changes[1].id)
    assert code == 0 and read_active(store)[0] == {A: 1, B: 1, C: 1}
    recorded = json.loads(store.get(out.strip().splitlines()[-1].removeprefix("decision recorded: ")) or b"")
    assert recorded["kind"] == "rollback" and recorded["to"] == changes[1].id
    assert recorded["active_before"] == {A: 1} and recorded["delta"]["added"] == [B, C]


def test_a_rollback_with_nothing_recorded_changes_nothing(store: Store, cli) -> None:
    code, _, err = cli("templates", "rollback")
    assert code == 2 and err.startswith("error: templates rollback: no recorded change made the current active set")
    code, _, err = cli("templates", "rollback", "--to", "20261201T000000000000Z-abcdef")
    assert code == 2 and "no recorded change has that id" in err
    assert read_active(store)[0] == {A: 1} and store.list(layout.TEMPLATE_DECISIONS) == []


def test_a_damaged_decision_record_is_named_and_never_followed(store: Store, cli, tmp_path: Path) -> None:
    assert cli("templates", "--add", template_file(tmp_path, B))[0] == 0
    [record] = store.list(layout.TEMPLATE_DECISIONS)
    forged = json.loads(store.get(record.key) or b"")
    forged["active_before"] = {"missing-template:9": 0}  # a weight of 0 is no active set
    store.put(record.key, json.dumps(forged).encode())
    code, _, err = cli("templates", "rollback")
    assert code == 2 and "no recorded change made the current active set" in err
    code, out, _ = cli("templates")
    assert f"damaged decision record, not trusted: {record.key}: not a decision record" in out
    assert read_active(store)[0] == {A: 1, B: 1}
