"""Sweep: the leases and claims of runs that are gone are released and named; live ones are left alone,
and a second sweep releases nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from content_pipeline.claims.queue import claim, live_claims, read_queue, update_queue
from content_pipeline.claims.sweep import sweep
from content_pipeline.store import Store, layout, open_store, store_for
from content_pipeline.store.host import this_host
from content_pipeline.store.lease import live_lease
from tests.support.helpers import dead_pid, hold


def test_sweep_releases_what_gone_runs_left_and_nothing_else(store: Store) -> None:
    dead, me = dead_pid(), this_host()
    hold(store, layout.BATCH_LOCK, me, dead, "crashed", 300)  # its process is gone
    expired = hold(store, layout.run_lock("remote-old"), "worker-9", 4242, "remote-old", -600)  # elsewhere
    hold(store, layout.run_lock("remote-live"), "worker-9", 4242, "remote-live", 300)  # may still live
    hold(store, layout.run_lock("me"), me, os.getpid(), "me", 300)  # this process: live
    claim(store, "me", ["c"], 1, os.getpid(), 300)
    claim(store, "crashed", ["a", "b"], 2, dead, 300)  # (a later claim would free these itself)

    swept = sweep(store)

    assert sorted(swept.leases) == [
        f"lease {layout.BATCH_LOCK} of run crashed (pid {dead} on {me}) released: its process is gone from {me}",
        f"lease {layout.run_lock('remote-old')} of run remote-old (pid 4242 on worker-9) released: "
        f"expired at {expired}",
    ]
    assert swept.claims == [
        f"2 claim(s) of run crashed (pid {dead} on {me}) released (they need content again): "
        f"its process is gone from {me}"
    ]
    assert live_lease(store, layout.BATCH_LOCK) is None and live_lease(store, layout.run_lock("remote-old")) is None
    assert live_lease(store, layout.run_lock("remote-live")) is not None
    assert live_lease(store, layout.run_lock("me")) is not None
    assert live_claims(store, read_queue(store)[0]) == {"c": "me"} and set(read_queue(store)[0]["runs"]) == {"me"}
    assert sweep(store).lines == []  # a second sweep releases nothing


def test_a_grace_keeps_a_holder_that_expired_only_just(store: Store) -> None:
    hold(store, layout.run_lock("late"), "worker-9", 4242, "late", -30)  # expired half a minute ago
    entry = {"host": "worker-9", "pid": 4242, "expires_ts": time.time() - 30, "slugs": ["x"]}
    update_queue(store, lambda queue: {"runs": {"late": entry}})
    assert sweep(store, grace_s=60).lines == []
    assert len(sweep(store, grace_s=10).lines) == 2


def test_go_live_sweeps_before_it_claims(make_settings) -> None:
    from tests.support.helpers import run

    settings = make_settings(limit=20)
    store = store_for(settings)
    dead = dead_pid()
    hold(store, layout.BATCH_LOCK, this_host(), dead, "crashed", 300)
    hold(store, layout.run_lock("crashed"), this_host(), dead, "crashed", 300)
    claim(store, "crashed", [f"item-{n:04d}" for n in range(1, 11)], 10, dead, 3600)

    report = run(settings, store)

    assert report.ok and report.stats.successes == 20  # the crashed run's ten items were claimed again
    swept = [note for note in report.notes if "released" in note]
    assert len(swept) == 3 and any(note.startswith("10 claim(s) of run crashed") for note in swept), report.notes
    assert "10 claim(s) of run crashed" in report.markdown()


def test_go_live_names_what_another_live_run_holds_instead_of_reporting_less_to_do(make_settings) -> None:
    from tests.support.helpers import run

    settings = make_settings(limit=20)
    store = store_for(settings)
    until = hold(store, layout.run_lock("elsewhere"), "worker-9", 4242, "elsewhere", 300)  # another host's live run
    claim(store, "elsewhere", [f"item-{n:04d}" for n in range(1, 8)], 7, 4242, 300)

    report = run(settings, store)

    line = f"7 item(s) held by run elsewhere (pid 4242 on worker-9) until {until}"
    assert report.ok and report.needs_content == 13 and report.stats.successes == 13
    assert report.held_elsewhere == [line]
    assert f"- held by another run (not claimable now): {line}" in report.markdown()


@pytest.mark.slow  # runs the command line as processes
def test_the_sweep_command_names_what_it_releases_and_a_dry_run_releases_nothing(tmp_path: Path) -> None:
    from tests.support.cli_helpers import base_env
    from tests.support.cli_helpers import run as cli

    env = {**base_env(tmp_path), "STORE_URL": str(tmp_path / "store")}
    store = open_store(env["STORE_URL"])
    dead = dead_pid()
    claim(store, "crashed", ["a", "b"], 2, dead, 3600)
    line = f"2 claim(s) of run crashed (pid {dead} on {this_host()})"

    dry = cli(env, "sweep", "--dry-run")
    assert dry.returncode == 0 and f"sweep: {line} would be released" in dry.stdout, dry.stderr
    assert set(read_queue(store)[0]["runs"]) == {"crashed"}
    done = cli(env, "sweep")
    assert done.returncode == 0 and f"sweep: {line} released (they need content again)" in done.stdout
    assert read_queue(store)[0]["runs"] == {}
    again = cli(env, "sweep")
    assert again.returncode == 0 and "nothing to release" in again.stdout
