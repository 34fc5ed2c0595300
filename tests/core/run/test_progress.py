"""Progress: the work remaining, the share done, the last hour's rate and the time to finish; and a long
stage's heartbeat (items done, rate, ETA, dollars spent of the budget) as a progress bar on a terminal and
as a log line every HEARTBEAT_S otherwise."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from content_pipeline.run.heartbeat import Heartbeat, Pulse
from content_pipeline.run.reporter import PlainReporter
from tests.conftest import make_item
from tests.support.helpers import run


class Heard:
    """A listener that keeps what it is told (the interface is ours)."""

    live = False

    def __init__(self) -> None:
        self.pulses: list[Pulse] = []

    def pulse(self, pulse: Pulse) -> None:
        self.pulses.append(pulse)


def test_a_pulse_says_where_the_stage_is() -> None:
    pulse = Pulse("generate", done=30, total=120, elapsed_s=15.0, spent_usd=0.75, budget_usd=50.0)
    assert pulse.rate_per_s == 2.0 and pulse.eta_s == 45.0
    assert pulse.line() == "generate: 30/120 item(s) (25%), 2.00/s, ETA 45s, $0.7500 of $50.00 spent, 15s in"
    assert Pulse("generate", 0, 10, 3.0, 0.0, 1.0).line().startswith("generate: 0/10 item(s) (0%), 0.00/s, ETA -,")


def test_the_heartbeat_tells_the_listener_at_intervals_and_once_at_the_end() -> None:
    done = [0]
    heard = Heard()
    beat = Heartbeat("generate", 10, 1.0, lambda: (done[0], done[0] / 100), heard, every_s=0.05).start()
    for _ in range(10):
        time.sleep(0.03)
        done[0] += 1
    beat.stop()
    assert len(heard.pulses) >= 3 and heard.pulses[-1].final and not any(p.final for p in heard.pulses[:-1])
    counts = [p.done for p in heard.pulses]
    assert counts == sorted(counts) and counts[-1] == 10 and heard.pulses[-1].spent_usd == 0.1


def test_on_a_terminal_the_pulse_is_a_progress_bar() -> None:
    screen = io.StringIO()
    reporter = PlainReporter(console=Console(file=screen, force_terminal=True, width=140))
    assert reporter.live
    reporter.pulse(Pulse("generate", 7, 10, 3.5, 0.01, 1.0))
    reporter.pulse(Pulse("generate", 10, 10, 5.0, 0.02, 1.0, final=True))
    shown = screen.getvalue()
    assert "generate" in shown and "10/10" in shown and "$0.0200 of $1.00" in shown and "2.00/s" in shown


@pytest.mark.slow  # runs the command line as processes
def test_without_a_terminal_a_run_logs_a_heartbeat(tmp_path, write_catalogue) -> None:
    from tests.support.cli_helpers import base_env
    from tests.support.cli_helpers import run as cli

    env = {
        **base_env(tmp_path),
        "STORE_URL": str(tmp_path / "store"),
        "CATALOGUE": write_catalogue([make_item(n) for n in range(1, 21)]),
        "HEARTBEAT_S": "0.3",
        "OFFLINE_LATENCY_MS": "250",
        "CONCURRENCY": "4",
    }
    done = cli(env, "go-live")
    assert done.returncode == 0, done.stderr[-2000:]
    beats = [line for line in done.stderr.splitlines() if "| heartbeat: generate: " in line]
    assert beats, done.stderr[-2000:]
    assert "finished: generate: 20/20 item(s) (100%)" in done.stderr
    assert " of $250.00 spent" in beats[0]


def test_progress_counts_the_remaining_work_and_the_time_to_finish(make_settings, write_catalogue, store) -> None:
    from content_pipeline.ops.progress import progress, progress_line

    catalogue = write_catalogue([make_item(n) for n in range(1, 41)])
    assert run(make_settings(catalogue=catalogue, limit=10), store).ok
    figures = progress(store, catalogue)
    assert figures == {
        "catalogue": 40,
        "decided": 10,
        "remaining": 30,
        "done_share": 0.25,
        "rate_per_hour": 10,
        "eta_s": 10800.0,
    }
    assert progress_line(figures) == (
        "progress: 10 of 40 item(s) decided (25.0%), 30 remaining; 10 decided in the last hour; about 3h00m to go"
    )
