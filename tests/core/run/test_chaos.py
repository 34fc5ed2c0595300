"""Chaos: go-live killed with SIGKILL at a random moment (generate, consolidate, the finish), then resumed,
on both backends (a local folder, SeaweedFS) and both front doors of the CLI: the core directly (no Prefect
API configured: trials 0-2, 6-8, ...) and the Prefect flow (a server configured: trials 3-5, ...). After
every kill, and again after the resumed run, the books (outcomes plus the calls in flight at the crash,
booked at their worst case) are at least what the provider billed.
CHAOS_TRIALS sets the number of trials on each backend (5 in `make test`, 20 with `make chaos`)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterExpectedStartTime

from content_pipeline.ledger.scan import read_records, scan_ledger
from content_pipeline.store import Store, layout, open_store
from content_pipeline.store.lease import live_lease
from content_pipeline.views.audit import audit
from content_pipeline.views.snapshot import read_master
from tests.conftest import make_item
from tests.support.helpers import books, fake_llm, invoice

pytestmark = [pytest.mark.server, pytest.mark.slow]
TRIALS = int(os.environ.get("CHAOS_TRIALS", "5"))
ITEMS, CONCURRENCY = 120, 8
PHASES = ("generate", "consolidate", "finish")


class LedgerLines:
    """Counts the ledger's lines as a run writes them, on either backend: a local segment is read again
    as it grows; an S3 ledger object never changes, so each is read once."""

    def __init__(self, store: Store) -> None:
        self.store, self.seen = store, {}

    def __call__(self) -> int:
        for info in self.store.list(layout.LEDGER_PREFIX):
            if self.seen.get(info.key, (None, -1))[0] != info.version:
                self.seen[info.key] = (info.version, (self.store.get(info.key) or b"").count(b"\n"))
        return sum(n for _, n in self.seen.values())


# how long after the last record the finish may be killed: the direct door's finish (consolidate, audit,
# sync, audit, report) takes a tenth of a second for these items, a flow run's a second or more
FINISH_WINDOW_S = {"direct": 0.15, "flow": 1.0}


def kill_when(
    proc: subprocess.Popen, url: str, phase: str, rng: random.Random, window_s: float
) -> tuple[str, int] | None:
    """Wait for the moment of `phase` and SIGKILL the run; returns (what the moment was, ledger lines), or
    None when the run ended first. The finish is killed a random time within `window_s` of the last record."""
    store = open_store(url)
    ledger_lines = LedgerLines(store)
    target = rng.randint(5, ITEMS - 20)
    delay = rng.uniform(0.0, window_s)
    deadline = time.monotonic() + 120
    done_at = None
    while proc.poll() is None and time.monotonic() < deadline:
        lines = ledger_lines()
        if phase == "generate" and lines >= target:
            moment = f"generate, after {lines} records"
        elif phase == "consolidate" and lines >= min(target, ITEMS - 30) and live_lease(store, layout.CONSOLIDATE_LOCK):
            moment = f"consolidate (views lease held), after {lines} records"
        elif phase == "finish" and lines >= ITEMS:
            done_at = done_at or time.monotonic()
            if time.monotonic() - done_at < delay:
                time.sleep(0.002)
                continue
            moment = "finish (consolidate, audit, sync or report), all records in"
        else:
            time.sleep(0.002)
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return moment, lines
    proc.wait()
    return None


def test_sigkill_at_random_moments_loses_nothing_and_pays_nothing_twice(
    prefect_server, backend: str, tmp_path, write_catalogue, request: pytest.FixtureRequest
) -> None:
    base = str(tmp_path) if backend == "file" else request.getfixturevalue("s3_url")
    started = datetime.now(UTC)  # the flow runs of this test are those expected to start after
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "20261123")))
    catalogue = write_catalogue([make_item(n) for n in range(1, ITEMS + 1)], "chaos.jsonl")
    outcomes = []
    with fake_llm("sk-chaos", latency_ms=40, jitter=0.5) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_", "PREFECT_"))}
        env.update(
            PREFECT_HOME=str(tmp_path / "prefect-home"),  # no profile of the developer's points anywhere
            CATALOGUE=catalogue,
            OPENAI_API_KEY="sk-chaos",
            OPENAI_BASE_URL=server.url,
            CONCURRENCY=str(CONCURRENCY),
            CHUNK_SIZE="20",
            CONSOLIDATE_EVERY="10",
            PYTHONPATH=str(Path(__file__).resolve().parents[3]),
        )
        for trial in range(TRIALS):
            phase = PHASES[trial % len(PHASES)]
            door = "direct" if trial // len(PHASES) % 2 == 0 else "flow"
            window, killed = FINISH_WINDOW_S[door], None
            for attempt in range(4):  # a finish quicker than the drawn moment: again, in a fresh folder, sooner
                url = f"{base}/trial-{trial}-{attempt}"
                trial_env = {
                    **env,
                    "STORE_URL": url,
                    **({"PREFECT_API_URL": prefect_server} if door == "flow" else {}),
                }
                paid_before, billed_before = server.stats()["paid"], server.stats()["billed_nano"]
                proc = subprocess.Popen(
                    [sys.executable, "-m", "cli.main", "go-live", "--run-id", f"killed-{trial}", "--budget-usd", "50"],
                    env=trial_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                killed = kill_when(proc, url, phase, rng, window / 3**attempt)
                if killed is not None or phase != "finish":
                    break
            assert killed is not None, f"trial {trial}: the run ended before the {phase} moment"
            moment = f"{killed[0]} ({door})"
            store = open_store(url)
            before = scan_ledger(store).frame
            successes_before = set(before.filter(before["status"] == "success")["id"])
            # the books after the kill, as the store stands: never lower than what the provider billed
            billed, (recorded, booked) = invoice(server) - billed_before, books(store)
            assert recorded >= billed, f"trial {trial} ({moment}): books {recorded} nano-USD < invoice {billed}"

            resumed = subprocess.run(
                [sys.executable, "-m", "cli.main", "go-live", "--run-id", f"resumed-{trial}", "--budget-usd", "50"],
                env=trial_env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert resumed.returncode == 0, f"trial {trial} ({moment}): {resumed.stderr[-2000:]}"
            billed = invoice(server) - billed_before
            paid = server.stats()["paid"] - paid_before
            recorded, booked = books(store)
            assert recorded >= billed, f"trial {trial} ({moment}): books {recorded} nano-USD < invoice {billed}"

            master = read_master(store, "successes")
            assert successes_before <= set(master["id"]), f"trial {trial} ({moment}): a success was lost"
            assert master["slug"].is_unique().all() and master.height == ITEMS, f"trial {trial} ({moment})"
            result = audit(store)
            assert result.ok, f"trial {trial} ({moment}): {result.violations}"
            records = read_records(store)
            answered = sum(1 for r in records for c in r.calls if not c.outcome.startswith("failed"))
            assert len({r.slug for r in records}) == len(records) == ITEMS, f"trial {trial}: an item generated twice"
            assert answered == ITEMS  # every item paid once in the ledger (none of these needs escalating)
            # answers paid for whose record never reached the ledger (answered or still on the wire at the
            # kill): each was announced in the intents log before it was sent, so each is booked
            lost = paid - answered
            assert 0 <= lost <= booked.calls, f"trial {trial} ({moment}): {lost} paid answers, {booked.calls} booked"
            # the ledger's spend is the invoice, less exactly the answers the kill lost: nothing recorded
            # that was not billed, and nothing billed that is not recorded unless it was lost
            spent = recorded - booked.nano
            assert spent <= billed and (spent == billed) == (lost == 0), (
                f"trial {trial} ({moment}): ledger {spent} nano-USD, invoice {billed}, {lost} paid answers lost"
            )
            outcomes.append(
                {
                    "backend": backend,
                    "trial": trial,
                    "door": door,
                    "killed": moment,
                    "paid_not_in_ledger": lost,
                    "booked_in_flight": booked.calls,
                    "books_over_invoice_usd": round((recorded - billed) / 1e9, 6),
                }
            )
    print("\n" + "\n".join(json.dumps(o) for o in outcomes))
    # the flow door's trials ran as go-live flow runs on the Prefect server (the killed run and the resumed
    # one, which completed); the direct door's never reached Prefect
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["go-live"])),
            flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=started)),
        )
    flow_trials = [o["trial"] for o in outcomes if o["door"] == "flow"]
    as_flows = {r.parameters.get("run_id") for r in runs}
    assert as_flows == {f"{run}-{t}" for t in flow_trials for run in ("killed", "resumed")}, as_flows
    resumed = [r for r in runs if str(r.parameters.get("run_id")).startswith("resumed-")]
    assert all(r.state is not None and r.state.is_completed() for r in resumed), [r.state for r in resumed]
