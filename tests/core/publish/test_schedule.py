"""The posting plan against a signed webhook receiver on loopback: PUBLISH_PLAN's slots in their timezone (a
daylight-saving change included); a run fills the next 24 hours' free slots, one post each, oldest first, the
slot in the payload; a run an hour later adds nothing, a day later fills the next day's; health's queue check
is green, amber or red as the slots are filled; a post taken down frees its slot. The clock is moved by
replacing publish.window.now, never by sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from content_pipeline.errors import BadInputError
from content_pipeline.ops.health import health
from content_pipeline.posting_plan import PostingPlan, parse_plan
from content_pipeline.publish import window
from content_pipeline.publish.command import publish_command
from content_pipeline.publish.governance import SIGNALS
from content_pipeline.publish.history import read_history
from content_pipeline.publish.webhook import WebhookTarget
from content_pipeline.settings import Settings, load_settings
from content_pipeline.store import open_store
from tests.conftest import make_item
from tests.support.helpers import copy_store, generated_store
from tests.support.webhook_receiver import Receiver, WebhookReceiver

SECRET = "whsec-plan-19"
ITEMS = 7
LIVE = {name.lower(): "yes" for name in SIGNALS}
PLAN = "09:00,13:00,17:00 Europe/Berlin"
T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # 07:00 in Berlin: the day's three slots are ahead
TODAY = [datetime(2026, 12, 7, h, 0, tzinfo=UTC) for h in (8, 12, 16)]  # Berlin is UTC+1 in December


def at(slot: datetime) -> str:
    return slot.isoformat(timespec="seconds")


def test_a_plan_reads_its_slots_in_its_timezone() -> None:
    plan = parse_plan(PLAN)
    assert plan == PostingPlan((time(9), time(13), time(17)), "Europe/Berlin") and plan.per_day == 3
    assert plan.ahead(T0) == TODAY
    assert plan.ahead(T0 + timedelta(hours=1)) == TODAY
    assert plan.ahead(T0 + timedelta(hours=2, minutes=30)) == [*TODAY[1:], TODAY[0] + timedelta(days=1)]
    assert parse_plan("  ") is None and parse_plan("06:00").zone == "UTC"  # type: ignore[union-attr]
    # the spring change (2026-03-29, 02:00 -> 03:00 in Berlin): 09:00 is 07:00 UTC after it, 08:00 before
    spring = parse_plan("09:00 Europe/Berlin").slots(  # type: ignore[union-attr]
        datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)
    )
    assert spring == [datetime(2026, 3, 28, 8, tzinfo=UTC), datetime(2026, 3, 29, 7, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("9:00,25:00 Europe/Berlin", "'25:00' is not a time of day (HH:MM)"),
        ("09:00,09:00", "a time of day is given twice"),
        ("09:00 Europe/Atlantis", "'Europe/Atlantis' is not a known timezone"),
        ("nine Europe/Berlin", "'nine' is not a time of day"),
    ],
)
def test_a_bad_plan_is_refused_in_one_line_naming_it(value: str, says: str) -> None:
    with pytest.raises(BadInputError) as caught:
        load_settings(publish_plan=value)
    assert str(caught.value).startswith("setting PUBLISH_PLAN: ") and says in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generated_store(tmp_path_factory.mktemp("plan"), [make_item(n) for n in range(1, ITEMS + 1)])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with WebhookReceiver(SECRET) as got:
        yield got


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    moment = [T0]
    monkeypatch.setattr(window, "now", lambda: moment[0])
    return moment


@pytest.fixture
def settings(generated, tmp_path: Path, receiver: Receiver) -> Settings:
    store, catalogue = copy_store(generated, tmp_path)
    return load_settings(
        store_url=str(store),
        catalogue=str(catalogue),
        publish_target="webhook",
        publish_webhook_url=receiver.url,
        publish_webhook_secret=SECRET,
        publish_plan=PLAN,
        **LIVE,
    )


def publish(settings: Settings, dry_run: bool = False) -> object:
    target = WebhookTarget("webhook", str(settings.publish_webhook_url), SECRET, 5.0)
    try:
        settings = settings.with_run_id()
        store = open_store(settings.store_url)
        return publish_command(store, settings, target, settings.run_id or "", dry_run=dry_run)
    finally:
        target.close()


def queue(settings: Settings, moment: datetime) -> tuple[str, str]:
    [check] = [c for c in health(open_store(settings.store_url), settings, now=moment).checks if c.name == "queue"]
    return check.level, check.detail


def test_a_run_fills_the_next_24_hours_and_an_hour_later_adds_nothing(settings, clock, receiver: Receiver) -> None:
    assert queue(settings, T0)[0] == "red"  # nothing queued for the day
    dry = publish(settings, dry_run=True).lines()  # type: ignore[attr-defined]
    assert [line.split(": ")[1] for line in dry if ": for the slot " in line] == [
        f"for the slot {s:%Y-%m-%d %H:%M} UTC" for s in TODAY
    ]
    assert receiver.deliveries == []
    first = publish(settings)
    assert first.counts == {"created": 3}, first.lines()  # type: ignore[attr-defined]
    assert "4 waiting for a slot of the posting plan" in " ".join(first.lines())  # type: ignore[attr-defined]
    sent = [d.payload for d in receiver.deliveries]
    assert [p["publish_at"] for p in sent] == [at(s) for s in TODAY]
    assert len({p["slug"] for p in sent}) == 3
    assert queue(settings, T0) == (
        "green",
        f"3 of the next 24 h's 3 slot(s) ({PLAN.replace(',', ', ')}) hold an approved post",
    )

    clock[0] = T0 + timedelta(hours=1)  # no slot passed: the same three slots, all filled
    again = publish(settings)
    assert again.counts == {} and len(receiver.deliveries) == 3, again.lines()  # type: ignore[attr-defined]

    clock[0] = T0 + timedelta(hours=2, minutes=30)  # 09:30 Berlin: tomorrow's 09:00 is in the 24 hours now
    level, detail = queue(settings, clock[0])
    assert level == "amber" and "2 of the next 24 h's 3 slot(s)" in detail, detail
    assert "next empty slot 2026-12-08 08:00 UTC" in detail
    assert publish(settings).counts == {"created": 1}  # type: ignore[attr-defined]
    assert receiver.deliveries[-1].payload["publish_at"] == at(TODAY[0] + timedelta(days=1))

    clock[0] = T0 + timedelta(days=1)
    assert publish(settings).counts == {"created": 2}  # type: ignore[attr-defined]
    history = read_history(open_store(settings.store_url))
    assert sorted(history.scheduled("webhook")) == sorted(at(s + timedelta(days=d)) for d in (0, 1) for s in TODAY)
    assert len({d.payload["slug"] for d in receiver.deliveries}) == 6  # each post once


def test_without_a_plan_posts_go_out_at_once_and_the_queue_check_says_so(settings, clock, receiver) -> None:
    result = publish(settings.model_copy(update={"publish_plan": ""}))
    assert result.counts == {"created": ITEMS}  # type: ignore[attr-defined]
    assert all(d.payload["publish_at"] is None for d in receiver.deliveries)
    level, detail = queue(settings.model_copy(update={"publish_plan": ""}), T0)
    assert level == "green" and detail.startswith("no posting plan (PUBLISH_PLAN)")
