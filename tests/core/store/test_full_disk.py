"""A store whose disk fills while the ledger is written: the run stops its calls, keeps every answered
outcome in a rescue file, names the ledger and the cause first with the spend, prints its report, and the
next run imports the rescued outcomes before anything else: no paid answer lost, none paid twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from content_pipeline.ledger.scan import read_records
from content_pipeline.store import open_store
from content_pipeline.views.audit import audit
from tests.conftest import make_item
from tests.support.cli_helpers import base_env
from tests.support.helpers import assert_each_item_paid_once, fake_llm, rescued

pytestmark = [pytest.mark.slow]  # a tmpfs mounted, the CLI run as processes
ITEMS = 120


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of the test's own (mounted as root, unmounted after)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the disk to its last byte; the filler file, to delete to free it again."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (65536, 4096, 1):  # big writes, then smaller ones for what is left
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def ledger_lines(store_dir: Path) -> int:
    return (
        sum(p.read_bytes().count(b"\n") for p in (store_dir / "ledger").rglob("*.jsonl")) if store_dir.exists() else 0
    )


def test_a_full_disk_loses_no_paid_answer_and_the_next_run_imports_them(
    small_disk: Path, tmp_path: Path, write_catalogue
) -> None:
    store_dir, rescue_dir = small_disk / "store", tmp_path / "rescue"
    with fake_llm("sk-full", latency_ms=60) as server:
        env = {
            **base_env(tmp_path),
            "STORE_URL": str(store_dir),
            "RESCUE_DIR": str(rescue_dir),
            "CATALOGUE": write_catalogue([make_item(n) for n in range(1, ITEMS + 1)]),
            "OPENAI_API_KEY": "sk-full",
            "OPENAI_BASE_URL": server.url,
            "CONCURRENCY": "8",
            "CONSOLIDATE_EVERY": "0",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "go-live", "--budget-usd", "50"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while ledger_lines(store_dir) < 15 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before the disk could be filled"
        filler = fill(small_disk)
        out, err = proc.communicate(timeout=120)
        paid = server.stats()["paid"]

        assert proc.returncode == 1
        last = err.strip().splitlines()[-1]
        assert last.startswith("go-live failed: generate: the ledger (ledger/"), last
        assert "cannot be appended: cannot append to" in last and "No space left on device" in last
        assert f"kept in the rescue file {rescue_dir}/" in last and "(spent $" in last
        assert out.startswith("# go-live run ")  # the report, though the store could not take it
        kept = rescued(rescue_dir)
        recorded = read_records(open_store(str(store_dir)))
        assert kept, "the answers in flight when the disk filled are in the rescue file"
        assert sum(len(r.calls) for r in [*recorded, *kept]) == paid  # every paid call is in one or the other
        assert len(recorded) + len(kept) < ITEMS  # the run stopped putting calls in flight

        filler.unlink()  # space again: the next run imports the rescued answers before anything else
        again = subprocess.run(
            [sys.executable, "-m", "cli.main", "go-live", "--budget-usd", "50"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
        assert f"imported {len(kept)} record(s) from the rescue file(s)" in again.stdout
        assert not list(rescue_dir.glob("*.rescue.jsonl"))
        store = open_store(str(store_dir))
        assert_each_item_paid_once(store, ITEMS, server.stats()["paid"])
        assert audit(store).ok
        assert (
            json.loads(
                subprocess.run(
                    [sys.executable, "-m", "cli.main", "status", "--json"], env=env, capture_output=True, text=True
                ).stdout
            )["done"]
            == ITEMS
        )
    assert os.path.ismount(small_disk)
