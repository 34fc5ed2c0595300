"""The fake provider's Files and Batches API, as the `openai` SDK calls it: files create, retrieve and content;
batches create, retrieve, list and cancel; each batch run after a completion delay, with per-request faults,
expiry, and every answer's usage billed at the batch price."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from content_pipeline.rehearsal.faults import ERRORS

if TYPE_CHECKING:
    from content_pipeline.rehearsal.server import FakeLLM

ENDPOINT = "/v1/chat/completions"
WINDOW_S = 24 * 3600
RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
LOST_OUTPUT = ("none", "gone", "garbled")  # how an output file is lost (FakeLLMConfig.lost_output)
LOST_ERRORS = ("gone", "broken")  # how an error file is lost (FakeLLMConfig.lost_errors): 404, or cut off halfway


@dataclass
class StoredFile:
    """An uploaded or produced file."""

    id: str
    purpose: str
    filename: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class FakeBatch:
    """One batch: its input, when it was made, its state, and its output and error files once it ended."""

    id: str
    input_file_id: str
    metadata: dict[str, str]
    created: float
    status: str = "in_progress"
    ended: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})

    def body(self) -> dict[str, Any]:
        ended = int(self.ended) if self.ended else None
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created),
            "in_progress_at": int(self.created),
            "expires_at": int(self.created + WINDOW_S),
            "completed_at": ended if self.status == "completed" else None,
            "expired_at": ended if self.status == "expired" else None,
            "cancelled_at": ended if self.status == "cancelled" else None,
            "failed_at": ended if self.status == "failed" else None,
            "request_counts": dict(self.counts),
            "metadata": dict(self.metadata),
        }


class BatchDesk:
    """Files and batches of one fake server (thread-safe). A batch ends on the first look after the
    server's `batch_delay_s`: each request answered as a chat call would be (its faults included), a
    `batch_expire_share` of them not run (the batch expires), or all of them cancelled."""

    def __init__(self, fake: FakeLLM) -> None:
        self.fake = fake
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        self.created = 0  # batches created, in all
        self.looks = 0  # batches retrieved, in all
        self._lock = threading.RLock()

    # --- files

    def add_file(self, purpose: str, filename: str, data: bytes) -> StoredFile:
        stored = StoredFile(f"file-{secrets.token_hex(12)}", purpose, filename, data)
        with self._lock:
            self.files[stored.id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self.files.get(file_id)

    def _lost(self, stored: StoredFile) -> str:
        """How the file is lost now: `lost_output` for an output file, `lost_errors` for an error file."""
        if stored.filename.endswith("_output.jsonl"):
            return self.fake.config.lost_output
        return self.fake.config.lost_errors if stored.filename.endswith("_error.jsonl") else ""

    def content(self, file_id: str) -> bytes | None:
        """A file's bytes as a download gets them: None for an output or error file lost as `gone`, lines
        that do not parse for an output file lost as `garbled` (while `lost_output` or `lost_errors` says so)."""
        stored = self.file(file_id)
        lost = self._lost(stored) if stored is not None else ""
        if stored is None or lost == "gone":
            return None
        if lost == "garbled":
            return b"".join(b"{garbled " + line[:20] + b"\n" for line in stored.data.splitlines())
        return stored.data

    def cut(self, file_id: str) -> int | None:
        """How many lines a download of the file gets before the connection drops (an error file lost as
        `broken`: half of them); None when it is sent whole."""
        stored = self.file(file_id)
        if stored is None or self._lost(stored) != "broken":
            return None
        return len(stored.data.splitlines()) // 2

    def view(self, batch: FakeBatch) -> dict[str, Any]:
        """A batch as the API shows it: with `lost_output` none, a finished batch names no output file."""
        body = batch.body()
        if self.fake.config.lost_output == "none":
            body["output_file_id"] = None
        return body

    # --- batches

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        source = self.file(str(body.get("input_file_id")))
        if source is None or source.purpose != "batch":
            return 400, _error(f"input_file_id {body.get('input_file_id')!r} is not a batch file")
        if body.get("endpoint") != ENDPOINT or body.get("completion_window") != "24h":
            return 400, _error("endpoint must be /v1/chat/completions and completion_window 24h")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or len(metadata) > 16:
            return 400, _error("metadata must be an object of at most 16 pairs")
        lines = [line for line in source.data.splitlines() if line.strip()]
        batch = FakeBatch(
            f"batch_{secrets.token_hex(12)}", source.id, {str(k): str(v) for k, v in metadata.items()}, time.time()
        )
        batch.counts["total"] = len(lines)
        with self._lock:
            self.batches[batch.id] = batch
            self.created += 1
        return 200, self.view(batch)

    def looked(self) -> None:
        """A retrieve arrived (counted before it is held or answered)."""
        with self._lock:
            self.looks += 1

    def retrieve(self, batch_id: str) -> FakeBatch | None:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is not None and batch.status in RUNNING:
                self._advance(batch)
            return batch

    def cancel(self, batch_id: str) -> FakeBatch | None:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is not None and batch.status in RUNNING:
                self._end(batch, ran=0, status="cancelled")
            return batch

    def listing(self, after: str | None, limit: int) -> dict[str, Any]:
        """Newest first, `limit` at a time after the batch `after`, as the API pages them."""
        with self._lock:
            ordered = sorted(self.batches.values(), key=lambda b: (b.created, b.id), reverse=True)
            start = next((i + 1 for i, b in enumerate(ordered) if b.id == after), 0) if after else 0
            page = ordered[start : start + limit]
            data = [self.view(self.retrieve(b.id)) for b in page]  # type: ignore[arg-type]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": start + limit < len(ordered),
        }

    def _advance(self, batch: FakeBatch) -> None:
        config = self.fake.config
        if time.time() - batch.created < config.batch_delay_s:
            return
        total = batch.counts["total"]
        expired = round(total * config.batch_expire_share)
        self._end(batch, ran=total - expired, status="expired" if expired else "completed")

    def _end(self, batch: FakeBatch, ran: int, status: str) -> None:
        """Run the first `ran` requests, put the rest in the error file as not run, and end the batch."""
        source = self.files[batch.input_file_id]
        outputs, errors = [], []
        for n, raw in enumerate(line for line in source.data.splitlines() if line.strip()):
            request = json.loads(raw)
            custom_id = str(request.get("custom_id"))
            if n >= ran:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append(_line(custom_id, None, {"code": code, "message": f"request not run: the batch {status}"}))
                continue
            status_code, answer = self._answer(request.get("body") or {})
            if status_code == 200:
                outputs.append(_line(custom_id, {"status_code": 200, "request_id": _rid(), "body": answer}, None))
            else:
                errors.append(
                    _line(custom_id, {"status_code": status_code, "request_id": _rid(), "body": answer}, None)
                )
        batch.counts["completed"], batch.counts["failed"] = len(outputs), len(errors) - (batch.counts["total"] - ran)
        if outputs:
            batch.output_file_id = self.add_file("batch_output", f"{batch.id}_output.jsonl", _jsonl(outputs)).id
        if errors:
            batch.error_file_id = self.add_file("batch_output", f"{batch.id}_error.jsonl", _jsonl(errors)).id
        batch.status, batch.ended = status, time.time()

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One request of a batch, answered as a chat call is (a fault rule that matches its item applies;
        an answer is billed at the batch price)."""
        from content_pipeline.rehearsal.handler import item_text

        fake = self.fake
        kind = fake._fault_for(item_text(body))
        if kind in ("timeout", "drop", "html", "echo"):
            kind = "500"
        if kind in ERRORS:
            status, code, kind_type, text = ERRORS[kind]
            fake._count(f"batch_{kind}")
            return status, {"error": {"message": text, "type": kind_type, "code": code}}
        answer = fake.answer(body, kind)
        fake._count("batch_paid")
        fake._bill(answer, batch=True)
        return 200, answer


def _line(custom_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": f"batch_req_{secrets.token_hex(8)}", "custom_id": custom_id, "response": response, "error": error}


def _rid() -> str:
    return f"req_{secrets.token_hex(8)}"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


def paced_lines(data: bytes, delay_s: float) -> Iterator[bytes]:
    """A file's lines, `delay_s` apart (a slow download, to kill a collector in the middle of one)."""
    for line in data.splitlines(keepends=True):
        if delay_s:
            time.sleep(delay_s)
        yield line
