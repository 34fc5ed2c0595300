"""The fake provider's HTTP handler: /chat/completions as an OpenAI-compatible server answers it, limits and
faults included, plus /_fake/stats and /_fake/faults."""

from __future__ import annotations

import json
import math
import socket
import time
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from content_pipeline.errors import BadInputError
from content_pipeline.llm import offline
from content_pipeline.rehearsal.batches import paced_lines
from content_pipeline.rehearsal.faults import ERRORS

if TYPE_CHECKING:
    from content_pipeline.rehearsal.server import FakeLLM

_HTML = b"<html><body>502 Bad Gateway from a proxy</body></html>"


def _prompt(body: dict[str, Any]) -> str:
    return "".join(str(m.get("content") or "") for m in body.get("messages") or [])


def item_text(body: dict[str, Any]) -> str:
    """The item part of the prompt (the JSON between <item> tags, not the system prompt's mention of
    them), which fault rules match against."""
    found = offline.ITEM_JSON.search(_prompt(body))
    return found.group(1) if found else ""


class Handler(BaseHTTPRequestHandler):
    """One connection's requests; `fake` is the server whose config, limits and counters it uses."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (Nagle + delayed ACK)
    fake: FakeLLM

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), "application/json", headers)

    def _send_bytes(self, status: int, data: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, kind: str, headers: dict[str, str], message: str | None = None, label: str = "") -> None:
        status, code, kind_type, text = ERRORS[kind]
        self.fake._count(label or kind)
        self._send(status, {"error": {"message": message or text, "type": kind_type, "code": code}}, headers)

    def _no_route(self) -> None:
        self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    def _is(self, suffix: str) -> bool:
        return self.path.rstrip("/").endswith(suffix)

    def do_GET(self) -> None:
        if self._batch_api("GET", b""):
            return
        if self._is("/_fake/stats"):
            self._send(200, self.fake.stats())
        elif self._is("/models"):
            self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._no_route()

    def do_POST(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if self._batch_api("POST", raw):
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "the body is not JSON", "type": "invalid_request_error"}})
            return
        if self._is("/_fake/faults"):
            self._set_faults(body)
        elif self._is("/chat/completions"):
            self._chat(body, arrived)
        else:
            self._no_route()

    def _batch_api(self, method: str, raw: bytes) -> bool:
        """The Files and Batches routes (rehearsal/batches.py); False for any other path."""
        parts = urlsplit(self.path)
        path, query = parts.path.rstrip("/").split("/v1", 1)[-1], parse_qs(parts.query)
        desk, fake = self.fake.desk, self.fake
        segments = path.strip("/").split("/")
        if segments[0] not in ("files", "batches"):
            return False
        if self._admit({}, self.headers.get("authorization") or "", limited=False) is None:
            return True
        if method == "POST" and path == "/files":
            fake.hold("upload")
            purpose, name, data = _multipart(self.headers.get("content-type") or "", raw)
            stored = desk.add_file(purpose, name, data)
            fake.hold("uploaded")
            self._send(200, stored.meta())
        elif method == "GET" and segments[0] == "files" and len(segments) in (2, 3):
            stored = desk.file(segments[1])
            content = desk.content(segments[1])
            if stored is None or (content is None and len(segments) == 3):
                self._send(404, {"error": {"message": f"no file {segments[1]}", "type": "invalid_request_error"}})
            elif len(segments) == 3 and segments[2] == "content":
                self._stream(content or b"", fake.config.file_line_delay_s, desk.cut(segments[1]))
            else:
                self._send(200, stored.meta())
        elif method == "POST" and path == "/batches":
            fake.hold("create")
            status, body = desk.create(json.loads(raw or b"{}"))
            fake.hold("created")
            self._send(status, body)
        elif method == "GET" and path == "/batches":
            self._send(200, desk.listing((query.get("after") or [None])[0], int((query.get("limit") or [20])[0])))
        elif segments[0] == "batches" and len(segments) in (2, 3):
            if method == "GET":
                desk.looked()  # counted as it arrives (a client may be killed while it is held)
                fake.hold("retrieve")
            batch = (
                desk.cancel(segments[1])
                if len(segments) == 3 and segments[2] == "cancel"
                else desk.retrieve(segments[1])
            )
            if batch is None:
                self._send(404, {"error": {"message": f"no batch {segments[1]}", "type": "invalid_request_error"}})
            else:
                self._send(200, desk.view(batch))
        else:
            self._no_route()
        return True

    def _stream(self, data: bytes, delay_s: float, cut: int | None = None) -> None:
        """A file's bytes, sent line by line `delay_s` apart (chunked: the client reads as they come); with
        `cut`, the connection is closed after that many lines, the body left unfinished (a broken download)."""
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for sent, line in enumerate(paced_lines(data, delay_s)):
            if sent == cut:
                self.fake._count("broken_download")
                self.close_connection = True
                return
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _set_faults(self, body: dict[str, Any]) -> None:
        try:
            self.fake.set_faults(list(body.get("faults") or []))
        except BadInputError as exc:
            self._send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        self._send(200, self.fake.stats())

    def _chat(self, body: dict[str, Any], arrived: float) -> None:
        fake = self.fake
        auth = self.headers.get("authorization") or ""
        fake.record_request(self.path, auth, body, item_text(body))
        fake._count("requests")
        headers = self._admit(body, auth)
        if headers is None:
            return
        kind = fake._fault_for(item_text(body))
        if kind == "resource_unavailable" and body.get("service_tier") != "flex":
            kind = None  # only the flex tier runs out of capacity
        if kind == "drop":
            fake._count("drop")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        answer = fake.answer(body, kind) if kind not in (*ERRORS, "echo", "html") else None
        fake._flight(1)
        try:
            # the latency is the time to answer, from the request's arrival: our own work counts against it
            wait = fake.config.hang_s if kind == "timeout" else fake._latency() - (time.monotonic() - arrived)
            time.sleep(max(0.0, wait))
        finally:
            fake._flight(-1)
        self._reply(kind, answer, headers, auth)

    def _admit(self, body: dict[str, Any], auth: str, limited: bool = True) -> dict[str, str] | None:
        """The rate-limit headers of a request that may go on; None when it was answered already (a wrong
        key, a denied model, a limit reached). `limited`: a chat call, held to RPM and TPM."""
        fake = self.fake
        key = fake.config.key
        if key is not None and auth != f"Bearer {key}":
            given = auth.removeprefix("Bearer ")
            self._error("401", {}, f"Incorrect API key provided: {given[:3]}***{given[-4:]}")
            return None
        if not limited:
            return {}
        if body.get("model") in fake.config.denied_models:
            fake._count("403")
            self._send(403, {"error": {"message": "no access to this model", "code": "model_access_denied"}})
            return None
        tokens = math.ceil(len(_prompt(body)) / 4) + int(
            body.get("max_completion_tokens") or body.get("max_tokens") or 0
        )
        wait, headers = fake._limited(tokens)
        if wait:
            retry = {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
            self._error("429", {**headers, **retry}, label="rate_limited")
            return None
        return headers

    def _reply(self, kind: str | None, answer: dict[str, Any] | None, headers: dict[str, str], auth: str) -> None:
        fake = self.fake
        if kind == "echo":
            self._error("500", headers, f"upstream failed for request with authorization {auth}", label="echo")
        elif kind in ERRORS:
            retry = {"retry-after": f"{fake.config.retry_after_s:g}"} if kind == "429" else {}
            self._error(kind, {**headers, **retry})
        elif kind == "html":
            fake._count("html")
            self._send_bytes(200, _HTML, "text/html")
        else:
            assert answer is not None
            fake._count("paid")
            fake._bill(answer)
            fake._count(kind or "ok")
            self._send(200, answer, headers)


def _multipart(content_type: str, raw: bytes) -> tuple[str, str, bytes]:
    """purpose, file name and file bytes of a files.create upload (multipart/form-data)."""
    message = BytesParser(policy=default).parsebytes(f"content-type: {content_type}\r\n\r\n".encode() + raw)
    purpose, name, data = "", "upload.jsonl", b""
    for part in message.iter_parts():
        field_name = part.get_param("name", header="content-disposition")
        if field_name == "purpose":
            purpose = part.get_content().strip()
        elif field_name == "file":
            name = part.get_filename() or name
            data = part.get_payload(decode=True) or b""
    return purpose, name, data


def handler_for(fake: FakeLLM) -> type[Handler]:
    """The handler class of one server."""
    return type("FakeLLMHandler", (Handler,), {"fake": fake})
