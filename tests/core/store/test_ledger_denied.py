"""An S3 store that stops taking the ledger's PUTs mid-run (access denied): the run stops its calls, keeps
every answered outcome in a rescue file, names the ledger and the cause first with the spend, and the
next run imports them: no paid answer lost, none paid twice. And an append whose PUT landed though every
answer to it was lost is recorded once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from content_pipeline.ledger.scan import read_records
from content_pipeline.settings import load_settings
from content_pipeline.store.s3 import S3Store, s3_client
from content_pipeline.views.audit import audit
from tests.conftest import make_item
from tests.support.helpers import assert_each_item_paid_once, fake_llm, rescued, run, s3_error

ITEMS = 60


class DenyLedgerPuts:
    """A botocore hook on the real client: once `armed`, SeaweedFS is not asked and every PUT of a ledger
    object is answered 403 AccessDenied, as a bucket policy revoked mid-run would (a fault SeaweedFS has no
    switch for; the requests before and the reads go to the real server)."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.denied = 0

    def __call__(self, request: Any, **_: Any) -> Any:
        if self.armed.is_set() and request.method == "PUT" and "/ledger/" in request.url:
            self.denied += 1
            return s3_error(request.url, 403, "AccessDenied")
        return None


def test_ledger_puts_denied_lose_no_paid_answer_and_the_next_run_imports_them(
    s3_url: str, tmp_path: Path, write_catalogue
) -> None:
    rescue_dir = tmp_path / "rescue"
    deny = DenyLedgerPuts()
    client = s3_client()
    client.meta.events.register("before-send.s3", deny)
    bucket, prefix = s3_url[len("s3://") :].split("/", 1)
    store = S3Store(s3_url, bucket, prefix, client)
    catalogue = write_catalogue([make_item(n) for n in range(1, ITEMS + 1)], "denied.jsonl")
    with fake_llm("sk-denied", latency_ms=40) as server:
        options = {
            "store_url": s3_url,
            "catalogue": catalogue,
            "rescue_dir": str(rescue_dir),
            "openai_api_key": "sk-denied",
            "openai_base_url": server.url,
            "concurrency": 6,
            "consolidate_every": 0,
        }

        def arm_after_ten_answers() -> None:
            deadline = time.monotonic() + 60
            while server.stats()["paid"] < 10 and time.monotonic() < deadline:
                time.sleep(0.005)
            deny.armed.set()

        threading.Thread(target=arm_after_ten_answers, daemon=True).start()
        report = run(load_settings(**options).with_run_id(), store)
        paid = server.stats()["paid"]

        assert not report.ok and report.failure is not None
        assert report.failure.startswith("generate: the ledger (ledger/"), report.failure
        assert "cannot be appended: S3 put" in report.failure and "AccessDenied" in report.failure
        assert f"kept in the rescue file {rescue_dir}/" in report.failure and "(spent $" in report.failure
        kept = rescued(rescue_dir)
        assert deny.denied > 0 and kept
        deny.armed.clear()  # access restored
        recorded = read_records(store)
        assert sum(len(r.calls) for r in [*recorded, *kept]) == paid
        assert len(recorded) + len(kept) < ITEMS  # the run stopped putting calls in flight

        again = run(load_settings(**options).with_run_id(), store)
        assert again.ok, again.failure
        assert any(note.startswith(f"imported {len(kept)} record(s)") for note in again.notes)
        assert_each_item_paid_once(store, ITEMS, server.stats()["paid"])
        assert audit(store).ok


class LandThenFail:
    """A botocore hook on the real client: the first ledger PUT reaches SeaweedFS (sent by a second client),
    but every try botocore makes of it is answered 500, as if each answer were lost on the way back; the
    next PUT call goes through (a fault SeaweedFS cannot make: a reply lost after the write)."""

    def __init__(self, other: Any) -> None:
        self.other, self.calls, self.failed = other, 0, 0

    def __call__(self, request: Any, **_: Any) -> Any:
        if request.method != "PUT" or "/ledger/" not in request.url:
            return None
        if str(request.headers.get("amz-sdk-request", b"")).find("attempt=1;") >= 0:
            self.calls += 1  # botocore's first try of a new call
        if self.calls != 1:
            return None
        if self.failed == 0:
            bucket, key = request.url.split("?")[0].split("/", 3)[3].split("/", 1)
            self.other.put_object(Bucket=bucket, Key=key, Body=request.body)
        self.failed += 1
        return s3_error(request.url, 500, "InternalError")


def test_an_append_that_landed_though_its_answer_was_lost_is_recorded_once(s3_url: str) -> None:
    from content_pipeline.ledger.writer import LedgerWriter
    from tests.support.helpers import record

    client = s3_client()
    hook = LandThenFail(s3_client())
    client.meta.events.register("before-send.s3", hook)
    bucket, prefix = s3_url[len("s3://") :].split("/", 1)
    store = S3Store(s3_url, bucket, prefix, client)
    writer = LedgerWriter(store, "run-1", retry_s=(0.01,))
    writer.append(record("a"))
    writer.close()
    assert hook.calls == 2 and hook.failed > 1  # botocore's tries all failed: the writer tried again, on the same key
    assert [r.slug for r in read_records(store)] == ["a"]
    assert len(store.list("ledger/")) == 1
