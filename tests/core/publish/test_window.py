"""Release windows and the approval a policy incident requires, against a signed webhook receiver on loopback:
`publish approve --until` stands for PUBLISH_APPROVAL_GRANTED until then, and past it every run simulates saying
the window closed (an approval with --until in the past too); a policy quarantine makes a UI approval required
for 48 hours whatever the signals say, so a run with no approver simulates; past the 48 hours (a test clock,
never a sleep) the signals decide again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.main import main
from content_pipeline.publish import window
from content_pipeline.publish.command import publish_command
from content_pipeline.publish.governance import SIGNALS
from content_pipeline.publish.webhook import WebhookTarget
from content_pipeline.settings import Settings, load_settings
from content_pipeline.store import open_store
from tests.conftest import make_item
from tests.support.helpers import copy_store, generated_store
from tests.support.webhook_receiver import Receiver, WebhookReceiver

SECRET = "whsec-window-77"
ITEMS = 3
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generated_store(tmp_path_factory.mktemp("window"), [make_item(n) for n in range(1, ITEMS + 1)])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with WebhookReceiver(SECRET) as got:
        yield got


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The windows' clock, at T0 until the test moves it."""
    at = [T0]
    monkeypatch.setattr(window, "now", lambda: at[0])
    return at


@pytest.fixture
def env(generated, tmp_path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Settings:
    store, catalogue = copy_store(generated, tmp_path)
    values = {
        "STORE_URL": str(store),
        "CATALOGUE": str(catalogue),
        "PUBLISH_TARGET": "webhook",
        "PUBLISH_WEBHOOK_URL": receiver.url,
        "PUBLISH_WEBHOOK_SECRET": SECRET,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def publish(settings: Settings) -> object:
    target = WebhookTarget("webhook", str(settings.publish_webhook_url), SECRET, 5.0)
    try:
        settings = settings.with_run_id()
        return publish_command(open_store(settings.store_url), settings, target, settings.run_id or "")
    finally:
        target.close()


def two_signals(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_autonomous_publish": "yes", "governance_approved": "yes"})


def test_a_window_stands_for_the_approval_until_it_closes(env: Settings, clock, receiver: Receiver, capsys) -> None:
    assert main(["publish", "approve", "--until", "2026-12-07T17:00:00Z", "--reason", "release 42"]) == 0
    assert "live publishing approved until 2026-12-07 17:00 UTC by " in capsys.readouterr().out
    settings = two_signals(env).model_copy(update={"publish_max_posts": 1})  # the window stands for the third
    sent = publish(settings)
    assert sent.counts == {"created": 1} and sent.decision.reason.startswith("live: approved until 2026-12-07 17:00")
    clock[0] = T0 + timedelta(hours=8)  # 17:00: closed, whatever the signals say
    everything = settings.model_copy(update={name.lower(): "yes" for name in SIGNALS})
    held = publish(everything)
    assert held.counts == {"simulated": 1} and len(receiver.deliveries) == 1
    assert held.decision.reason.startswith("simulated: the release window closed at 2026-12-07 17:00 UTC (approved by ")
    assert held.decision.reason.endswith(": release 42)")
    assert main(["publish", "approve", "--close"]) == 0 and "nothing goes out live" in capsys.readouterr().out


def test_an_approval_until_a_time_already_past_simulates(env: Settings, clock, receiver: Receiver, capsys) -> None:
    assert main(["publish", "approve", "--until", "2026-12-07T08:00:00+00:00"]) == 0
    assert "(already past: every publish run simulates)" in capsys.readouterr().out
    everything = env.model_copy(update={name.lower(): "yes" for name in SIGNALS})
    held = publish(everything)
    assert held.counts == {"simulated": ITEMS} and receiver.deliveries == []
    assert held.decision.reason.startswith("simulated: the release window closed at 2026-12-07 08:00 UTC")
    assert main(["publish", "approve"]) == 2 and "give --until TIME or --close" in capsys.readouterr().err


def test_a_policy_quarantine_requires_a_ui_approval_for_48_hours(
    env: Settings, clock, receiver: Receiver, capsys
) -> None:
    everything = env.model_copy(update={name.lower(): "yes" for name in SIGNALS})
    assert main(["quarantine", "item-0003", "--reason", "policy: unapproved health claim"]) == 0
    assert "a UI approval is required for every publish run until 2026-12-09 09:00 UTC" in capsys.readouterr().out
    held = publish(everything)  # all three signals, but no approver can answer outside a flow run
    assert held.counts == {"simulated": ITEMS - 1} and receiver.deliveries == []
    assert held.decision.reason.startswith(
        "simulated: a UI approval is required until 2026-12-09 09:00 UTC (quarantine of item-0003: policy: "
    )
    assert held.decision.reason.endswith("no approver can answer a run outside a Prefect flow run)")
    clock[0] = T0 + timedelta(hours=47, minutes=59)
    assert publish(everything).counts == {"simulated": ITEMS - 1}
    clock[0] = T0 + timedelta(hours=48)  # the requirement has passed: the signals decide again
    assert publish(everything).counts == {"created": ITEMS - 1}


def test_require_approval_hours_sets_the_span_and_goes_only_with_a_slug(env: Settings, clock, capsys) -> None:
    assert main(["quarantine", "item-0002", "--reason", "typo", "--require-approval-hours", "6"]) == 0
    assert "until 2026-12-07 15:00 UTC" in capsys.readouterr().out
    assert window.approval_required(open_store(env.store_url)) is not None
    assert main(["quarantine", "--require-approval-hours", "6"]) == 2
    assert "--require-approval-hours goes with a SLUG taken down" in capsys.readouterr().err
    assert main(["quarantine", "item-0001", "--reason", "typo"]) == 0  # a reason that names no policy: no span
    assert "UI approval" not in capsys.readouterr().out
