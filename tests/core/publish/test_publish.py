"""Publishing under governance to a signed webhook (a real receiver on loopback that verifies every
signature): only all three signals truthy publish live, every other combination stores a simulation naming
what is missing; each post goes out once, a changed item updates it; halt and quarantine hold across
workers; 401 stops the run; damaged attempt-log lines are named and kept aside."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.publish.command import publish_command
from content_pipeline.publish.governance import SIGNALS
from content_pipeline.publish.halt import halt, halted, resume
from content_pipeline.publish.history import read_history
from content_pipeline.publish.holds import hold, release
from content_pipeline.publish.log import AttemptLog
from content_pipeline.publish.slo import publish_slo
from content_pipeline.publish.spike import watch
from content_pipeline.publish.webhook import WebhookTarget
from content_pipeline.settings import Settings, load_settings
from content_pipeline.store import Store, layout, open_store
from tests.conftest import make_item
from tests.support.fault_proxy import FaultProxy
from tests.support.helpers import copy_store, generated_store
from tests.support.webhook_receiver import Receiver, WebhookReceiver

SECRET = "whsec-test-4f1c"
LIVE = {name.lower(): "yes" for name in SIGNALS}
ITEMS = 6


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store with ITEMS consolidated successes (the offline model), and its catalogue: built once."""
    rows = [make_item(n, tags=["widgets", f"batch-{n % 2}"]) for n in range(1, ITEMS + 1)]
    return generated_store(tmp_path_factory.mktemp("published"), rows)


@pytest.fixture
def site(generated: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the generated store and catalogue of this test's own."""
    return copy_store(generated, tmp_path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with WebhookReceiver(SECRET) as got:
        yield got


def settings_for(site: tuple[Path, Path], receiver: Receiver, **signals: Any) -> Settings:
    store, catalogue = site
    return load_settings(
        store_url=str(store),
        catalogue=str(catalogue),
        publish_webhook_url=receiver.url,
        publish_webhook_secret=SECRET,
        **signals,
    ).with_run_id()


def publish(settings: Settings, store: Store | None = None, secret: str = SECRET, **kwargs: Any) -> Any:
    target = WebhookTarget("webhook", str(settings.publish_webhook_url), secret, 5.0)
    try:
        store = store or open_store(settings.store_url)
        return publish_command(store, settings, target, settings.with_run_id().run_id or "", **kwargs)
    finally:
        target.close()


def _cases() -> list[tuple[object, object, object]]:
    """Every subset of the signals left out, each left-out signal written as each near-miss in turn (or
    unset), beside truthy values written several ways; and all three truthy, spelt three ways."""
    truthy = [" TRUE ", "Yes", "1"]
    misses = ["on", "y", "2", "truee", "0", "", None]
    cases: list[tuple[object, object, object]] = []
    for subset in itertools.product([False, True], repeat=3):
        for i, miss in enumerate(misses):
            case = tuple(miss if off else truthy[(i + n) % 3] for n, off in enumerate(subset))
            cases.append(case)  # type: ignore[arg-type]
            if not any(subset):
                break
    return cases


@pytest.mark.parametrize("values", _cases(), ids=lambda v: "/".join(map(repr, v)))
def test_only_all_three_signals_truthy_publish_live(site, receiver: Receiver, values: tuple[object, ...]) -> None:
    given = {name.lower(): v for name, v in zip(SIGNALS, values, strict=True) if v is not None}
    settings = settings_for(site, receiver, publish_max_posts=3, **given)
    result = publish(settings)
    missing = [
        name for name, v in zip(SIGNALS, values, strict=True) if str(v).strip().lower() not in ("true", "1", "yes")
    ]
    history = read_history(open_store(settings.store_url))
    outcomes = history.outcomes()
    assert len(outcomes) == 3
    if not missing:
        assert [o["result"] for o in outcomes] == ["created"] * 3 and all(o["live"] for o in outcomes)
        assert len(receiver.deliveries) == 3 and all(d.verified for d in receiver.deliveries)
        return
    assert receiver.deliveries == []  # nothing reached the receiver
    assert result.counts == {"simulated": 3}
    for outcome in outcomes:
        assert outcome["result"] == "simulated" and not outcome["live"]
        assert outcome["reason"].startswith("simulated: " + ", ".join(missing))
        assert outcome["payload"]["slug"] == outcome["slug"] and outcome["payload"]["content"].startswith("<p>")


def _rewrite_catalogue(catalogue: Path, slug: str, **fields: Any) -> None:
    rows = [json.loads(line) for line in catalogue.read_text().splitlines()]
    catalogue.write_text("".join(json.dumps({**r, **fields} if r["slug"] == slug else r) + "\n" for r in rows))


def test_each_post_goes_out_once_and_a_changed_item_updates_it(site, receiver: Receiver) -> None:
    settings = settings_for(site, receiver, **LIVE)
    first = publish(settings)
    assert first.ok and first.counts == {"created": ITEMS}
    again = publish(settings)
    assert again.counts == {} and again.plan.published == ITEMS and len(receiver.deliveries) == ITEMS
    _rewrite_catalogue(site[1], "item-0002", tags=["widgets", "new-season"])
    changed = publish(settings)
    assert changed.counts == {"updated": 1}
    update = receiver.deliveries[-1].payload
    assert update["event"] == "update" and update["slug"] == "item-0002" and update["post"]["tags"][-1] == "new-season"
    assert all(d.verified for d in receiver.deliveries)
    keys = [d.key for d in receiver.deliveries]
    assert len(set(keys)) == len(keys)  # one idempotency key per slug, target and content
    slo = publish_slo(read_history(open_store(settings.store_url)))
    assert (slo.attempts, slo.succeeded, slo.met) == (ITEMS + 1, ITEMS + 1, True)


def test_a_halt_on_one_worker_holds_on_another_until_resume(site, receiver: Receiver) -> None:
    settings = settings_for(site, receiver, **LIVE)
    operator_side, worker_side = open_store(settings.store_url), open_store(settings.store_url)
    halt(operator_side, "incident 7: wrong prices", "ops@example.com")
    held = publish(settings, worker_side)
    assert held.counts == {"simulated": ITEMS} and receiver.deliveries == []
    assert "publishing is halted (incident 7: wrong prices (halted " in held.decision.reason
    assert resume(operator_side)
    assert publish(settings, worker_side).counts == {"created": ITEMS}


def test_a_failure_spike_halts_publishing_on_every_worker_until_resume(site, receiver: Receiver) -> None:
    with FaultProxy(receiver.url) as proxy:
        settings = settings_for(site, receiver, **LIVE).model_copy(
            update={"publish_webhook_url": proxy.url, "publish_max_retries": 0, "publish_spike_min_attempts": 1}
        )
        proxy.add(method="POST", path="/", kind="500", times=1)
        first, second = open_store(settings.store_url), open_store(settings.store_url)
        spiked = publish(settings, first)
        assert spiked.counts == {"failed": 1, "simulated": ITEMS - 1} and not spiked.ok
        assert spiked.halted_itself is not None and spiked.halted_itself.startswith(
            "publishing halted: failure spike: 1 of 1 live publish attempt(s) since "
        )
        assert "failed (100%, over 5%); `content-pipeline publish resume` lifts it" in spiked.halted_itself
        assert len(receiver.deliveries) == 0  # the rest went nowhere: simulated
        held = publish(settings, second)  # another worker, after the spike
        assert held.counts == {"simulated": ITEMS} and "publishing is halted (failure spike: 1 of 1" in (
            held.decision.reason
        )
        assert "(halted " in held.decision.reason and "by the failure-spike watch)" in held.decision.reason
        assert resume(first)
        assert publish(settings, second).counts == {"created": ITEMS}


def test_the_watch_calls_no_spike_under_the_threshold_or_the_minimum(site, receiver: Receiver) -> None:
    settings = settings_for(site, receiver, **LIVE)
    store = open_store(settings.store_url)
    _outcomes(store, succeeded=39, failed=2)  # 4.9% of the last hour: under 5%
    assert watch(store, 0.05, 1).line() == "no failure spike in the last hour" and halted(store) is None
    _outcomes(store, succeeded=0, failed=1)  # 3 of 42: 7%
    assert watch(store, 0.05, 50).halted_now is False  # under the minimum of 50 attempts
    watched = watch(store, 0.05, 1)
    assert watched.halted_now and "3 of 42 live publish attempt(s)" in (halted(store) or "")
    again = watch(store, 0.05, 1)
    assert not again.halted_now and again.line().startswith("publishing is halted: failure spike: 3 of 42")


def test_a_quarantined_item_is_taken_down_and_not_published_again_until_released(site, receiver: Receiver) -> None:
    settings = settings_for(site, receiver, **LIVE)
    worker_a, worker_b = open_store(settings.store_url), open_store(settings.store_url)
    assert publish(settings, worker_a).counts == {"created": ITEMS}
    log, target = AttemptLog(worker_b, "ops-1"), WebhookTarget("webhook", receiver.url, SECRET)
    try:
        line = hold(worker_b, log, target, read_history(worker_b), "item-0003", "a recall", "ops", False)
    finally:
        log.close()
    assert line.startswith("quarantine: item-0003 held from publishing; post ") and line.endswith("turned to draft")
    assert receiver.deliveries[-1].payload["event"] == "unpublish" and receiver.deliveries[-1].verified
    _rewrite_catalogue(site[1], "item-0003", tags=["changed"])  # even a changed item stays down
    held = publish(settings, worker_a)
    assert held.counts == {} and held.plan.quarantined == 1
    log = AttemptLog(worker_b, "ops-2")
    try:
        release(worker_b, log, "item-0003", "ops")
    finally:
        log.close()
        target.close()
    back = publish(settings, worker_a)
    assert back.counts == {"updated": 1} and receiver.deliveries[-1].payload["slug"] == "item-0003"


def test_a_refused_signature_stops_the_run_with_one_line_and_sends_nothing_more(site, receiver: Receiver) -> None:
    settings = settings_for(site, receiver, **LIVE)
    result = publish(settings, secret="the-wrong-secret")
    assert result.stopped == "webhook webhook: 401: the receiver refused the delivery (check PUBLISH_WEBHOOK_SECRET)"
    assert len(receiver.deliveries) == 1 and not receiver.deliveries[0].verified
    assert "the-wrong-secret" not in json.dumps(read_history(open_store(settings.store_url)).lines)
    assert publish(settings).counts == {"created": ITEMS}  # the right secret: every post, the first included


def test_a_damaged_attempt_log_line_is_named_kept_aside_and_the_rest_still_counts(site, receiver: Receiver) -> None:
    settings = settings_for(site, receiver, **LIVE)
    assert publish(settings).counts == {"created": ITEMS}
    store = open_store(settings.store_url)
    [log_key] = [i.key for i in store.list(layout.PUBLISH_ATTEMPTS)]
    lines = (store.get(log_key) or b"").split(b"\n")
    lines[1] = lines[1].replace(b'"created"', b'"createX"')  # an outcome edited by hand
    store.put(log_key, b"\n".join(lines))
    history = read_history(store)
    assert history.damaged == [f"{log_key}: line 2: fails its checksum (changed since it was written)"]
    assert store.get(layout.damaged_record(log_key, 1)) == lines[1]
    again = publish(settings)
    assert any("damaged line" in note for note in again.notes)
    # A webhook cannot be asked what it holds: the post whose outcome was lost goes again, under the same
    # idempotency key as its first delivery, so the receiver drops it as one it has seen.
    assert again.counts == {"created": 1}
    first, repeat = receiver.deliveries[0], receiver.deliveries[-1]  # line 2: the first post's outcome
    assert repeat.key == first.key and repeat.payload["slug"] == first.payload["slug"]


def _outcomes(store: Store, succeeded: int, failed: int) -> None:
    log = AttemptLog(store, "slo-run")
    try:
        for n in range(succeeded + failed):
            result = "created" if n < succeeded else "failed"
            log.write(
                "outcome", key=f"k{n}", target="webhook", slug=f"s-{n}", content_hash="h", live=True, result=result
            )
    finally:
        log.close()


def test_health_turns_amber_below_the_98_percent_slo_and_the_report_shows_it(site, receiver: Receiver) -> None:
    from content_pipeline.ops.health import health
    from content_pipeline.ops.reports import build_report, terminal

    settings = settings_for(site, receiver)
    store = open_store(settings.store_url)
    _outcomes(store, 49, 1)  # 98.0%: met
    [check] = [c for c in health(store, settings).checks if c.name == "publishing"]
    assert check.level == "green" and check.detail.startswith("98.0% of 50 live publish attempt(s)")
    _outcomes(store, 0, 1)  # 49 of 51: 96.1%
    [check] = [c for c in health(store, settings).checks if c.name == "publishing"]
    assert check.level == "amber" and check.detail == (
        "96.1% of 51 live publish attempt(s) in the last 24 h succeeded (below the 98% SLO)"
    )
    report = build_report(store, "kpi", "daily")
    rows = {r["metric"]: r for r in report.publishing_rows()}
    assert rows["live_attempts"]["this period"] == "51" and rows["failed"]["this period"] == "2"
    assert rows["success rate (SLO 98%: MISSED)"]["this period"] == "96.1%"
    assert "Publishing" in terminal(report) and "## Publishing" in report.markdown()
    halt(store, "maintenance", "ops")
    [check] = [c for c in health(store, settings).checks if c.name == "publishing"]
    assert check.level == "amber" and "halted: maintenance (halted " in check.detail


def test_a_second_worker_waits_for_the_target_and_never_races_the_first(site, receiver: Receiver) -> None:
    from content_pipeline.errors import LeaseHeldError
    from content_pipeline.publish.command import publish_lease

    settings = settings_for(site, receiver, lease_wait_s=0.5, **LIVE)
    store = open_store(settings.store_url)
    with publish_lease(store, settings, "webhook", "worker-a"), pytest.raises(LeaseHeldError) as held:
        publish(settings, open_store(settings.store_url))
    assert "publishing to webhook" in str(held.value) and receiver.deliveries == []
    assert publish(settings).counts == {"created": ITEMS}  # once the first let go


class SettingsTargets:
    """What flows/publishing.py provides, for a run of the core without Prefect: the settings' webhook,
    and no approver."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def target(self, name: str) -> WebhookTarget | None:
        url, secret = self.settings.publish_webhook_url, self.settings.publish_webhook_secret
        return WebhookTarget(name, url, secret.get_secret_value()) if url and secret else None

    def approve(self, the_plan: Any, target: str) -> None:
        return None


def test_go_live_ends_with_the_publish_stage_and_notes_it_in_its_report(tmp_path: Path, receiver: Receiver) -> None:
    from content_pipeline.run.golive import go_live
    from content_pipeline.run.reporter import PlainReporter

    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text("".join(json.dumps(make_item(n)) + "\n" for n in range(1, 4)))
    base = {"store_url": str(tmp_path / "store"), "catalogue": str(catalogue), "publish_target": "webhook"}
    settings = load_settings(**base, publish_webhook_url=receiver.url, publish_webhook_secret=SECRET, **LIVE)
    report = go_live(
        settings.with_run_id(), open_store(settings.store_url), PlainReporter(), None, SettingsTargets(settings)
    )
    assert report.ok and "publish: to webhook: live: all three signals are set" in report.notes
    assert "publish: 3 planned: 3 created; 0 already live, 0 quarantined held back, 0 over the limit" in report.notes
    assert len(receiver.deliveries) == 3 and all(d.verified for d in receiver.deliveries)
    unset = load_settings(**base)
    again = go_live(unset.with_run_id(), open_store(unset.store_url), PlainReporter(), None, SettingsTargets(unset))
    assert again.ok and "publish: skipped: the target 'webhook' is not configured" in again.notes


def test_the_quality_gate_holds_a_post_with_its_reason_and_sends_the_rest(site, receiver: Receiver) -> None:
    settings = settings_for(site, receiver, publish_forbidden_phrases="sample widget 2, guaranteed cure", **LIVE)
    result = publish(settings)
    assert result.counts == {"created": ITEMS - 1}, result.lines()
    assert "1 held by the quality gate" in result.lines()[1]
    [held] = [line for line in result.lines() if "held by the quality gate:" in line]
    assert held.startswith("item-0002: held by the quality gate: forbidden phrase 'sample widget 2' in the ")
    assert "item-0002" not in {d.payload["slug"] for d in receiver.deliveries}  # held, not sent
    assert result.to_dict()["held"] == [{"slug": "item-0002", "why": held.split(": ", 2)[2]}]
    freed = publish(settings.model_copy(update={"publish_forbidden_phrases": ""}))  # the rule changed: it goes
    assert freed.counts == {"created": 1} and receiver.deliveries[-1].payload["slug"] == "item-0002"
