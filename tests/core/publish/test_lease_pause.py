"""A publisher or collector paused past its lease (SIGSTOP, as a frozen VM or a long GC would), taken over by
another worker that finishes the job, then resumed (SIGCONT): it checks its lease before its next post or
append, says it lost it, and stops; every slug is posted once, every outcome recorded once. Real processes
(the `content-pipeline` command, and a small driver that waits at a fixed point of a publish run), a lease
of two seconds."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.ledger.scan import read_records
from content_pipeline.publish.governance import SIGNALS
from content_pipeline.publish.history import read_history
from content_pipeline.store import Store, layout, open_store
from content_pipeline.store.lease import live_lease
from content_pipeline.views.audit import audit
from content_pipeline.views.snapshot import read_usage
from tests.conftest import make_item
from tests.support.cli_helpers import CLI, base_env, run
from tests.support.helpers import fake_llm, generated_store, until
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.slow]
TTL = "2"
SECRET = "whsec-pause-9d2e"

# A publish run whose target waits for a line on stdin when it looks up the second post (before any lease
# check of that post): the test freezes it there with SIGSTOP, so where it stops is never a matter of timing.
DRIVER = """
import sys
from content_pipeline.errors import PipelineError
from content_pipeline.publish.command import publish_command
from content_pipeline.publish.webhook import WebhookTarget
from content_pipeline.settings import load_settings
from content_pipeline.store import open_store

class Waiting(WebhookTarget):
    looked = 0

    def find(self, slug, post_id):
        Waiting.looked += 1
        if Waiting.looked == 2:
            print(f"waiting before {slug}", flush=True)
            sys.stdin.readline()
        return super().find(slug, post_id)

settings = load_settings().with_run_id()
target = Waiting("webhook", settings.publish_webhook_url, settings.publish_webhook_secret.get_secret_value())
try:
    result = publish_command(open_store(settings.store_url), settings, target, settings.run_id)
except PipelineError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)
print("\\n".join(result.lines()))
"""


def first_line(process: subprocess.Popen[str], within_s: float = 60) -> str:
    """The process's first line on stdout, waited for `within_s` at most."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(within_s), "the process printed nothing"
    return process.stdout.readline().strip()


def lapsed(store: Store, key: str, within_s: float = 30) -> None:
    """Wait (bounded) until the lease `key` of the frozen process has expired."""
    until(lambda: live_lease(store, key) is None, within_s)


def resumed(process: subprocess.Popen[str], stdin: str = "") -> tuple[int, str]:
    """SIGCONT the frozen process (and give it `stdin`), then its exit code and stderr."""
    process.send_signal(signal.SIGCONT)
    _, err = process.communicate(stdin, timeout=60)
    return process.returncode, err


def batch_env(tmp_path: Path, write_catalogue: Any, items: int) -> dict[str, str]:
    """A shell for batch mode on a catalogue of `items` items, with the short lease (the fake provider's URL
    is added once it runs)."""
    return base_env(tmp_path) | {
        "STORE_URL": str(tmp_path / "store"),
        "CATALOGUE": write_catalogue([make_item(n) for n in range(1, items + 1)], "pause-catalogue.jsonl"),
        "OPENAI_API_KEY": "sk-pause",
        "GENERATION_MODE": "batch",
        "LEASE_TTL_S": TTL,
    }


def test_a_publisher_paused_past_its_lease_posts_nothing_twice(tmp_path: Path) -> None:
    rows = [make_item(n) for n in range(1, 5)]
    store_dir, catalogue = generated_store(tmp_path, rows)
    with WebhookReceiver(SECRET) as receiver:
        env = base_env(tmp_path) | {name: "yes" for name in SIGNALS}
        env |= {
            "STORE_URL": str(store_dir),
            "CATALOGUE": str(catalogue),
            "PUBLISH_TARGET": "webhook",
            "PUBLISH_WEBHOOK_URL": receiver.url,
            "PUBLISH_WEBHOOK_SECRET": SECRET,
            "LEASE_TTL_S": TTL,
        }
        worker_a = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            waiting = first_line(worker_a)
            assert waiting.startswith("waiting before item-"), waiting
            worker_a.send_signal(signal.SIGSTOP)  # frozen with its lease, one post sent
            assert len(receiver.deliveries) == 1
            worker_b = run(env, "publish", LEASE_WAIT_S="20")  # waits for the frozen worker's lease to lapse
            assert worker_b.returncode == 0, worker_b.stderr
            code, err = resumed(worker_a, "\n")
        finally:
            worker_a.kill()
    slug = waiting.removeprefix("waiting before ")
    assert code == 1 and err.count("\n") == 1, err
    assert "error: publishing to webhook: lost the lease 'locks/publish-webhook' to run " in err, err
    assert f"stopped before creating the post {slug} on webhook" in err, err
    posts = Counter(d.payload["slug"] for d in receiver.deliveries if d.payload["event"] == "publish")
    assert posts == {row["slug"]: 1 for row in rows}  # read back from the target: one post per slug
    assert len(receiver.deliveries) == len(rows)
    lines = read_history(open_store(str(store_dir))).lines
    outcomes = Counter(line["slug"] for line in lines if line["kind"] == "outcome")
    assert outcomes == {row["slug"]: 1 for row in rows}  # one outcome each in the attempt log


def test_a_collector_paused_past_its_lease_records_nothing_twice(tmp_path: Path, write_catalogue) -> None:
    items = 20
    env = batch_env(tmp_path, write_catalogue, items)
    with fake_llm("sk-pause") as server:
        env["OPENAI_BASE_URL"] = server.url
        assert run(env, "go-live", "--run-id", "paused").returncode == 0
        store = open_store(env["STORE_URL"])
        server.config.file_line_delay_s = 0.5  # the first collector reads its answers slowly
        worker_a = subprocess.Popen(
            [*CLI, "collect"], env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            until(lambda: len(read_records(store)) >= 1, 60)
            worker_a.send_signal(signal.SIGSTOP)  # frozen with its lease, answers still to append
            frozen = len(read_records(store))
            server.config.file_line_delay_s = 0.0
            lapsed(store, layout.run_lock("paused"))
            worker_b = run(env, "collect")
            code, err = resumed(worker_a)
        finally:
            worker_a.kill()
    assert 1 <= frozen < items
    assert worker_b.returncode == 0 and "1 batch(es) settled" in worker_b.stdout, worker_b.stderr
    assert f"{frozen} already in the ledger" in worker_b.stdout, worker_b.stdout
    assert code != 0 and err.count("\n") == 1, err
    assert "run paused: lost the lease 'locks/run-paused' to run paused (pid " in err, err
    assert "stopped before appending an outcome of batch paused/0001 to the ledger" in err, err
    records = read_records(store)
    assert len(records) == len({r.id for r in records}) == items  # one record per outcome
    assert Counter(r.slug for r in records) == {f"item-{n:04d}": 1 for n in range(1, items + 1)}
    assert read_usage(store)["records"] == items
    assert audit(store).ok


def test_a_go_live_paused_past_its_lease_before_creating_its_batch_creates_none(
    tmp_path: Path, write_catalogue
) -> None:
    """go-live frozen while the provider takes its batch's input file (the batch not created yet); collect
    takes the run's lease over and submits and settles the plan; go-live, resumed, creates no second batch."""
    items = 6
    env = batch_env(tmp_path, write_catalogue, items)
    with fake_llm("sk-pause") as server:
        env["OPENAI_BASE_URL"] = server.url
        server.config.stall["uploaded"] = 4.0  # the upload's answer held: go-live waits on it, then freezes
        worker_a = subprocess.Popen(
            [*CLI, "go-live", "--run-id", "frozen"],
            env=env,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            until(lambda: server.stats()["files"] >= 1, 60)
            worker_a.send_signal(signal.SIGSTOP)  # frozen with its lease, its batch planned, not created
            server.config.stall["uploaded"] = 0.0
            store = open_store(env["STORE_URL"])
            lapsed(store, layout.run_lock("frozen"))
            worker_b = run(env, "collect")
            code, err = resumed(worker_a)
        finally:
            worker_a.kill()
        created = server.stats()["batches_created"]
    assert worker_b.returncode == 0 and "1 batch(es) settled" in worker_b.stdout, worker_b.stdout + worker_b.stderr
    assert created == 1  # the resumed go-live created none
    assert code != 0 and "run frozen: lost the lease 'locks/run-frozen' to run " in err, err
    assert "stopped before creating the batch frozen/0001" in err, err
    records = read_records(store)
    assert len(records) == len({r.id for r in records}) == items
    assert audit(store).ok
