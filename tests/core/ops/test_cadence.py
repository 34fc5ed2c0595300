"""Posts per UTC day against the posting plan, from attempt-log lines planted at known times: the variance and
its ±1 flag, a post counted once on the day it went live (its slot's day when scheduled), missed schedules
counted once each, no plan, the open day, and the KPI report's section in markdown, terminal and JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.ledger.checksum import sign
from content_pipeline.ops.cadence import FLAG, NO_PLAN, OPEN, cadence
from content_pipeline.ops.reports import build_report, terminal
from content_pipeline.posting_plan import parse_plan
from content_pipeline.publish.history import read_history
from content_pipeline.publish.watchdog import ON_TIME, PUBLISHED, REPORTED
from content_pipeline.store import Store, layout, open_store

PLAN = parse_plan("09:00,13:00,17:00 Europe/Berlin")  # 08:00, 12:00, 16:00 UTC in December
DAY = [datetime(2026, 12, d, tzinfo=UTC) for d in (5, 6, 7)]
START, END = DAY[0], DAY[0] + timedelta(days=3)  # three whole UTC days, none open


@pytest.fixture
def local(store_dir: Path) -> Store:
    return open_store(str(store_dir))


def outcome(slug: str, at: datetime, slot: datetime | None = None, result: str = "created") -> dict[str, Any]:
    return {
        "kind": "outcome",
        "run_id": "planted",
        "target": "wordpress",
        "slug": slug,
        "key": f"k-{slug}-{at:%d%H%M}",
        "live": True,
        "result": result,
        "content_hash": f"h-{slug}",
        "slot": None if slot is None else slot.isoformat(),
        "at": at.isoformat(),
    }


def schedule(slug: str, slot: datetime, result: str, at: datetime) -> dict[str, Any]:
    where = {"target": "wordpress", "slug": slug, "slot": slot.isoformat()}
    return {"kind": "schedule", **where, "result": result, "at": at.isoformat()}


def plant(store: Store, entries: list[dict[str, Any]]) -> None:
    lines = [sign(json.dumps(e, separators=(",", ":")).encode()) for e in entries]
    store.put(layout.attempts_log("planted", "planted"), b"".join(lines))


def posts(day: datetime, count: int, prefix: str) -> list[dict[str, Any]]:
    """`count` posts sent at once on `day`, an hour apart from 07:00 UTC."""
    return [outcome(f"{prefix}-{n}", day + timedelta(hours=7 + n)) for n in range(count)]


def test_the_variance_per_day_and_the_flag_over_one(local: Store) -> None:
    plant(local, posts(DAY[0], 3, "a") + posts(DAY[1], 1, "b") + posts(DAY[2], 5, "c"))
    found = cadence(read_history(local), PLAN, START, END)
    shown = [(d.day.day, d.live, d.planned, d.variance, d.flagged, d.open) for d in found.days]
    assert shown == [(5, 3, 3, 0, False, False), (6, 1, 3, -2, True, False), (7, 5, 3, 2, True, False)]
    assert [r["flag"] for r in found.rows()] == ["", FLAG, FLAG]
    assert [r["variance"] for r in found.rows()] == ["0", "-2", "+2"]
    assert found.to_dict()["flagged_days"] == 2


def test_one_post_off_the_plan_is_not_flagged(local: Store) -> None:
    plant(local, posts(DAY[0], 2, "a") + posts(DAY[1], 4, "b") + posts(DAY[2], 3, "c"))
    found = cadence(read_history(local), PLAN, START, END)
    assert [d.variance for d in found.days] == [-1, 1, 0] and found.flagged == []
    assert found.notes()[0] == "every closed day within ±1"


def test_an_update_of_a_live_post_is_not_counted_again(local: Store) -> None:
    first = posts(DAY[0], 3, "a")
    updates = [
        outcome("a-0", DAY[1] + timedelta(hours=9), result="updated"),
        outcome("a-1", DAY[1], result="unchanged"),
    ]
    plant(local, first + updates + posts(DAY[1], 3, "b"))
    found = cadence(read_history(local), PLAN, START, END)
    assert [d.live for d in found.days] == [3, 3, 0]


def test_a_scheduled_post_counts_on_its_slot_day(local: Store) -> None:
    written = DAY[0] + timedelta(hours=20)  # the evening before: the next day's three slots filled
    slots = [DAY[1] + timedelta(hours=h) for h in (8, 12, 16)]
    plant(local, [outcome(f"s-{n}", written + timedelta(minutes=n), slot) for n, slot in enumerate(slots)])
    found = cadence(read_history(local), PLAN, START, END)
    assert [d.live for d in found.days] == [0, 3, 0]


def test_a_post_unscheduled_before_its_slot_counts_when_it_goes_live(local: Store) -> None:
    slot, later = DAY[1] + timedelta(hours=8), DAY[2] + timedelta(hours=12)
    halted = (DAY[0] + timedelta(hours=21)).isoformat()  # a halt takes it back to draft before its slot
    halt = {"kind": "takedown", "target": "wordpress", "slug": "s", "result": "draft", "at": halted}
    plant(
        local,
        [outcome("s", DAY[0] + timedelta(hours=20), slot), halt, outcome("s", DAY[1] + timedelta(hours=20), later)],
    )
    found = cadence(read_history(local), PLAN, START, END)
    assert [d.live for d in found.days] == [0, 0, 1]


def test_missed_schedules_count_once_each(local: Store) -> None:
    slot_a, slot_b, slot_c = (DAY[1] + timedelta(hours=h) for h in (8, 12, 16))
    findings = [
        schedule("a", slot_a, REPORTED, slot_a + timedelta(minutes=30)),
        schedule("a", slot_a, PUBLISHED, slot_a + timedelta(hours=2)),  # the same missed schedule, published later
        schedule("b", slot_b, REPORTED, slot_b + timedelta(minutes=30)),
        schedule("b", slot_b, REPORTED, slot_b + timedelta(hours=1)),
        schedule("c", slot_c, ON_TIME, slot_c + timedelta(minutes=30)),  # on time: not missed
    ]
    plant(local, findings)
    found = cadence(read_history(local), PLAN, START, END)
    assert (found.missed, found.missed_published) == (2, 1)
    assert found.notes()[-1] == "missed schedules: 2 (1 published by the watchdog, 1 reported)"


def test_no_plan_shows_posts_per_day_only(local: Store) -> None:
    plant(local, posts(DAY[0], 3, "a") + posts(DAY[1], 7, "b"))
    found = cadence(read_history(local), None, START, END)
    assert [(d.live, d.planned, d.variance, d.flagged) for d in found.days] == [
        (3, None, None, False),
        (7, None, None, False),
        (0, None, None, False),
    ]
    assert found.notes()[0] == NO_PLAN and found.rows()[1]["planned"] == "-"


def test_the_day_the_period_ends_in_is_open_and_not_flagged(local: Store) -> None:
    end = DAY[2] + timedelta(hours=13)  # two of the day's slots passed
    later = outcome("late", DAY[2] + timedelta(hours=1), DAY[2] + timedelta(hours=16))  # its slot after the end
    plant(local, [*posts(DAY[2], 6, "c"), later])
    found = cadence(read_history(local), PLAN, DAY[2] - timedelta(hours=11), end)
    [before, today] = found.days
    assert before.day == date(2026, 12, 6) and (before.live, before.planned, before.flagged) == (0, 3, True)
    assert (today.live, today.planned, today.variance, today.open, today.flagged) == (6, 2, 4, True, False)
    assert found.rows()[1]["flag"] == OPEN


def test_the_kpi_report_shows_the_posting_plan(local: Store) -> None:
    plant(local, posts(DAY[0], 3, "a") + posts(DAY[1], 1, "b") + posts(DAY[2], 5, "c"))
    report = build_report(local, "kpi", "weekly", END, plan=PLAN)
    markdown, text = report.markdown(), terminal(report)  # 12-01 to 12-04: no post, three planned: flagged too
    heading = "Posting plan (09:00, 13:00, 17:00 Europe/Berlin: 3 a day; SLO ±1 post a day)"
    assert f"## {heading}" in markdown and "| 2026-12-06 | 1 | 3 | -2 | over ±1 |" in markdown
    assert "- 6 day(s) over ±1 post from plan" in markdown
    assert heading in text and "missed schedules: 0" in text
    [flagged] = [line for line in text.splitlines() if line.startswith("2026-12-07")]
    assert flagged.split() == ["2026-12-07", "5", "3", "+2", "over", "±1"]
    assert report.to_dict()["cadence"]["flagged_days"] == 6 and len(report.to_dict()["cadence"]["days"]) == 7


def test_a_kpi_report_without_a_plan_says_so_and_a_cost_report_has_none(local: Store) -> None:
    plant(local, posts(DAY[0], 2, "a"))
    assert NO_PLAN in terminal(build_report(local, "kpi", "daily", END))
    cost = build_report(local, "cost", "daily", END)
    assert cost.cadence is None and "Posting plan" not in cost.markdown()
