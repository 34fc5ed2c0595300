"""A go-live killed under a parent that never reaps it (a container whose PID 1 does not, a shell wrapper) stays a
zombie: signal 0 still finds its pid. It is dead all the same: a go-live run at once after it frees its claims
and lease and generates what it left, instead of reporting `needs content: 0`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from content_pipeline.ledger.scan import scan_ledger
from content_pipeline.store import open_store
from content_pipeline.views.audit import audit
from content_pipeline.views.snapshot import read_master
from tests.conftest import make_item
from tests.support.cli_helpers import CLI, base_env, run
from tests.support.helpers import until

pytestmark = [pytest.mark.slow]  # go-live processes, one killed mid-run

ITEMS = 60
# starts the command, says its pid, and never waits for it: once killed, it stays a zombie
WRAPPER = """
import subprocess, sys, time
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
time.sleep(600)
"""


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_a_go_live_left_a_zombie_is_dead_to_the_run_after_it(tmp_path: Path, write_catalogue) -> None:
    env = base_env(tmp_path)
    env.update(
        STORE_URL=str(tmp_path / "store"), CATALOGUE=write_catalogue([make_item(n) for n in range(1, ITEMS + 1)])
    )
    store = open_store(env["STORE_URL"])
    slow = {**env, "OFFLINE_LATENCY_MS": "300", "CONCURRENCY": "4"}
    wrapper = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, *CLI, "go-live", "--run-id", "zombie-run"],
        env=slow,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert wrapper.stdout is not None
        pid = int(wrapper.stdout.readline())
        until(lambda: scan_ledger(store).frame.height >= 8, 120)
        os.kill(pid, signal.SIGKILL)
        until(lambda: state(pid) == "Z", 10)
        before = scan_ledger(store).frame
        assert 8 <= before.height < ITEMS, "the kill must land in the middle of generation"

        result = run(env, "go-live", "--run-id", "rerun")  # at once: nothing has expired yet

        assert state(pid) == "Z"  # still a zombie throughout
    finally:
        wrapper.kill()
        wrapper.wait()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "needs content: 0 " not in result.stderr, result.stderr[-3000:]
    master = read_master(store, "successes")
    assert master["slug"].is_unique().all() and master.height == ITEMS
    after = scan_ledger(store).frame
    rerun = set(after.filter(after["run_id"] == "rerun")["slug"])
    assert rerun == {f"item-{n:04d}" for n in range(1, ITEMS + 1)} - set(before["slug"])  # the rest, none twice
    assert audit(store).ok, audit(store).violations
