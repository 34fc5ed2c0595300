"""Generation: outcomes, escalation, budgets, the ledger, probe mode, and the real openai client over HTTP."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from content_pipeline.errors import ProviderAuthError, QuotaExhaustedError
from content_pipeline.ledger.records import OutcomeRecord
from content_pipeline.ledger.scan import read_records
from content_pipeline.store import layout
from content_pipeline.views.audit import audit
from content_pipeline.views.snapshot import read_checkpoint, read_usage
from tests.conftest import make_item, snapshot
from tests.support.helpers import fake_llm, run, s3_error


def mixed_catalogue(write_catalogue) -> str:
    twin = make_item(7)
    return write_catalogue(
        [make_item(n) for n in range(1, 7)]
        + [twin, {**twin, "slug": "item-0007-copy"}]
        + [make_item(8, features=["A single 4 cm steel frame"])]  # thin: the strong model is needed
        + [make_item(9, features=[])]  # too thin for either model
        + [make_item(10, category="Restricted")]  # the model refuses
    )


def ledger_records(store) -> list[OutcomeRecord]:
    return read_records(store)


def test_outcomes_escalation_and_ledger_records(make_settings, write_catalogue, store) -> None:
    settings = make_settings(catalogue=mixed_catalogue(write_catalogue))
    report = run(settings, store)
    records = {r.slug: r for r in ledger_records(store)}
    assert len(records) == 11
    rejects = {s: r.reason for s, r in records.items() if r.status == "reject"}
    assert rejects.pop("item-0010") == "refusal"
    assert rejects.pop("item-0009") == "length"
    assert set(rejects.values()) == {"near_copy"} and len(rejects) == 1  # one twin wins, the other is a copy
    thin = records["item-0008"]
    assert thin.status == "success" and thin.escalated and thin.model == "gpt-4o" and thin.attempt == 2
    assert [c.model for c in thin.calls] == ["gpt-4o-mini", "gpt-4o"]
    assert thin.calls[0].outcome == "length" and thin.calls[1].outcome == "pass"
    assert len({r.id for r in records.values()}) == len(records)  # each generation an id of its own
    assert thin.cost_usd == pytest.approx(sum(c.cost_usd for c in thin.calls))
    for record in records.values():
        assert (record.error is None) == (record.status == "success")
        assert record.run_id == settings.run_id and record.offline and record.input_hash
        assert record.tokens_in > 0 and record.tokens_out > 0 and record.prompt_version
    assert records["item-0009"].error.startswith("length: description has")
    assert report.stats.successes == 8 and report.stats.rejects == 3
    checkpoint = read_checkpoint(store)
    assert len(checkpoint["done"]) == 8 and len(checkpoint["rejected"]) == 3 and checkpoint["queued"] == {}
    assert audit(store).ok


def test_second_run_generates_nothing_and_spends_nothing(make_settings, store) -> None:
    run(make_settings(), store)
    report = run(make_settings(), store)
    assert report.spend_usd == 0 and report.stats.calls == 0
    assert len(ledger_records(store)) == 20


def test_item_budget_rejects_without_a_call(make_settings, store) -> None:
    report = run(make_settings(item_budget_usd=0.000001, limit=2), store)
    assert report.stats.calls == 0
    reasons = {r.reason for r in ledger_records(store)}
    assert reasons == {"item_budget"}
    assert all(r.retryable and r.cost_usd == 0 for r in ledger_records(store))


def test_evidence_only_writes_nothing_and_spends_nothing(make_settings, store) -> None:
    run(make_settings(limit=5), store)
    before = snapshot(store)
    report = run(make_settings(evidence_only=True))
    assert report.ok and report.stats.calls == 0 and report.spend_usd == 0
    assert snapshot(store) == before  # no ledger segment, no claim, no report: nothing at all


def test_real_openai_client_over_http(make_settings, write_catalogue, store) -> None:
    key = "sk-test-abcdef0123456789"
    with fake_llm(key) as server:
        settings = make_settings(
            catalogue=mixed_catalogue(write_catalogue), openai_api_key=key, openai_base_url=server.url
        )
        report = run(settings, store)
    assert report.stats.successes == 8 and not settings.offline
    assert {r["path"] for r in server.requests} == {"/v1/chat/completions"}
    assert server.requests[0]["body"]["response_format"]["type"] == "json_schema"
    assert Counter(r["body"]["model"] for r in server.requests)["gpt-4o"] == 3  # thin, too thin, refused
    assert not any(r.offline for r in ledger_records(store))


def test_invalid_key_fails_before_generating_anything(make_settings, store) -> None:
    with fake_llm("sk-the-right-one") as server:
        settings = make_settings(openai_api_key="sk-wrong-key-000111", openai_base_url=server.url)
        report = run(settings, store)
    assert isinstance(report.error, ProviderAuthError)
    assert "rejected the API key (401)" in str(report.error)
    assert "sk-wrong" not in str(report.error) and "000111" not in str(report.error)
    assert ledger_records(store) == [] and report.spend_usd == 0
    assert not any(b"000111" in data for data in snapshot(store).values())


def test_insufficient_quota_stops_the_run(make_settings, store) -> None:
    with fake_llm("sk-k", "quota") as server:
        settings = make_settings(openai_api_key="sk-k", openai_base_url=server.url, concurrency=2, max_retries=1)
        report = run(settings, store)
    assert isinstance(report.error, QuotaExhaustedError)
    assert "insufficient_quota" in report.stop_reason
    assert ledger_records(store) == [] and report.stats.not_attempted == 20
    # only the calls in flight when the quota ran out, each tried once (quota is not retried), no new item after
    assert len(server.requests) <= 2


def test_ledger_survives_each_outcome_as_a_whole_line(make_settings, store) -> None:
    run(make_settings(limit=3), store)
    stored = [store.get(i.key) for i in store.list(layout.LEDGER_PREFIX)]
    assert all(data.endswith(b"\n") for data in stored)  # every stored piece ends on a whole record
    lines = b"".join(stored).decode().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["status"] == "success" for line in lines)


def test_shared_limits_hold_slots_per_chunk_and_gate_every_call(make_settings, store) -> None:
    from contextlib import asynccontextmanager

    class Recorder:
        def __init__(self) -> None:
            self.chunks: list[int] = []
            self.calls = 0

        @asynccontextmanager
        async def chunk(self, slots: int):
            self.chunks.append(slots)
            yield

        @asynccontextmanager
        async def call(self):
            self.calls += 1
            yield

    from content_pipeline.generation.chunk import run_chunk
    from content_pipeline.generation.context import open_generation, plan_chunks
    from content_pipeline.intake.inventory import take_inventory

    settings = make_settings(chunk_size=5, concurrency=4)
    items = take_inventory(store, settings.catalogue, "all", settings.run_id).needs
    chunks, parallel, per_chunk = plan_chunks(items, settings)
    ctx = open_generation(store, settings, settings.run_id, parallel)
    ctx.limits = recorder = Recorder()
    for chunk in chunks:
        run_chunk(ctx, chunk, per_chunk)
    ctx.close()
    assert recorder.chunks == [per_chunk] * len(chunks) == [4] * 4
    assert recorder.calls == ctx.stats.calls == 20


def test_a_paid_first_call_is_kept_when_the_escalation_cannot_run(make_settings, write_catalogue, store) -> None:
    from content_pipeline.views.consolidate import consolidate

    with fake_llm("sk-k", denied_models={"gpt-4o"}) as server:
        catalogue = write_catalogue([make_item(1, features=["A single 4 cm steel frame"])], "thin.jsonl")
        report = run(make_settings(catalogue=catalogue, openai_api_key="sk-k", openai_base_url=server.url), store)
    assert isinstance(report.error, ProviderAuthError) and "denied access (403)" in str(report.error)
    [record] = ledger_records(store)
    assert record.status == "reject" and record.retryable and len(record.calls) == 1
    assert "escalation stopped" in record.error and record.cost_usd > 0
    consolidate(store)
    assert read_usage(store)["cost_nano"] == round(record.cost_usd * 1e9)


def test_an_answer_the_sdk_cannot_read_is_a_reject_not_a_loss(make_settings, store) -> None:
    with fake_llm("sk-k", "html") as server:
        report = run(make_settings(openai_api_key="sk-k", openai_base_url=server.url, limit=5), store)
    records = ledger_records(store)
    assert len(records) == 5 and report.error is None
    assert {r.reason for r in records} == {"provider_error"} and all(r.retryable for r in records)
    assert all("unexpected answer from gpt-4o-mini" in r.error for r in records)


def test_injected_s3_faults_are_retried_by_botocore_and_lose_nothing(make_settings, s3_url) -> None:
    """Every 4th S3 request answers 503 SlowDown or 500: botocore's retry mode absorbs them."""
    from content_pipeline.store.s3 import S3Store, s3_client
    from content_pipeline.views.audit import audit

    client = s3_client()
    seen = {"requests": 0, "faults": 0}

    def maybe_fail(request, **kwargs):
        seen["requests"] += 1
        if seen["requests"] % 4 == 0:
            seen["faults"] += 1
            status, code = (503, "SlowDown") if seen["faults"] % 2 else (500, "InternalError")
            return s3_error(request.url, status, code)
        return None

    client.meta.events.register("before-send.s3", maybe_fail)
    bucket, prefix = s3_url[len("s3://") :].split("/", 1)
    store = S3Store(s3_url, bucket, prefix, client)
    report = run(make_settings(store_url=s3_url), store)
    assert seen["faults"] > 20
    assert report.stats.successes == 20 and len(ledger_records(store)) == 20
    assert audit(store).ok, audit(store).violations


def test_the_error_text_prefilter_agrees_with_the_regex() -> None:
    from content_pipeline.generation import qa

    phrases = [
        "As an AI model",
        "I'm sorry",
        "im Sorry",
        "I am sorry",
        "I cannot help",
        "I can not assist",
        "i can't comply",
        "I canNOT provide",
        "I won't write",
        "Traceback (most recent call last)",
        "Internal Server Error",
        "RATE LIMIT EXCEEDED",
        "Lorem Ipsum",
        "[object Object]",
        "Error: boom",
        "<item>",
        "</ITEM>",
        "{{ name }}",
        "}}",
    ]
    texts = [f"A fine steel kettle. {p} and more." for p in phrases]
    texts += ["A fine steel kettle that pours well.", "Error:x no space", "I can help", "aſ an AI", "İ'm sorry"]
    for text in texts:
        fast, full = qa.bad_text(text), qa._BAD_TEXT.search(text)
        assert (fast and fast.group(0)) == (full and full.group(0)), text
    assert all(qa.bad_text(t) for t in texts[: len(phrases)])


def test_chunks_share_one_event_loop_and_client_and_the_gate_bounds_calls(make_settings, store, monkeypatch) -> None:
    """Chunks run from several threads take turns in one event loop with one client, which closes after
    the last chunk; CONCURRENCY bounds calls in flight, not items being recorded."""
    import threading

    from content_pipeline.generation.chunk import run_chunk
    from content_pipeline.generation.context import open_generation, plan_chunks
    from content_pipeline.intake.inventory import take_inventory
    from content_pipeline.llm import client as client_module

    with fake_llm("sk-k", latency_ms=30) as server:
        settings = make_settings(openai_api_key="sk-k", openai_base_url=server.url, chunk_size=5, concurrency=3)
        items = take_inventory(store, settings.catalogue, "all", settings.run_id).needs
        chunks, parallel, per_chunk = plan_chunks(items, settings)
        ctx = open_generation(store, settings, settings.run_id, parallel)
        made: list[object] = []
        make_client = client_module.make_client

        def counting(s):
            made.append(s)
            return make_client(s)

        monkeypatch.setattr(client_module, "make_client", counting)
        appender = ctx.ledger._appender  # the ledger segment's own appender, under the writer thread
        slow_append = appender.append

        def append(data: bytes) -> None:  # a slow disk: recording must not hold a call slot
            threading.Event().wait(0.05)
            slow_append(data)

        monkeypatch.setattr(appender, "append", append)
        threads = [threading.Thread(target=run_chunk, args=(ctx, chunk, per_chunk)) for chunk in chunks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        ctx.close()
        stats = server.stats()
    assert ctx.stats.successes == 20 and len(ledger_records(store)) == 20
    assert len(made) == 1  # one client for every chunk that ran while another was running
    gate = ctx.loop.gate
    assert stats["peak_in_flight"] <= 3 and 1 <= gate.peak <= 3 and gate.in_flight == 0  # every slot given back
    assert not ctx.loop.running  # closed after the last chunk
