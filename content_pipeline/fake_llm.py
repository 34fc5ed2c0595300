"""A local OpenAI-compatible server to rehearse a run: structured answers with usage, latency, RPM/TPM limits
answered with 429 and rate-limit headers, and provider faults on demand."""

from __future__ import annotations

import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from content_pipeline import offline
from content_pipeline.errors import BadInputError
from content_pipeline.prompts import SYSTEM_PROMPT

FAULTS = {
    "429": "rate limited: 429 rate_limit_exceeded with Retry-After",
    "quota": "429 insufficient_quota",
    "401": "401 invalid_api_key",
    "500": "500 server error",
    "502": "502 bad gateway",
    "503": "503 service unavailable",
    "timeout": "no answer until the client gives up",
    "drop": "the connection is closed without an answer",
    "malformed": "200 with content that is not JSON",
    "schema": "200 with JSON that fails the schema",
    "length": "200 cut short: finish_reason length",
    "content_filter": "200 filtered: finish_reason content_filter",
    "refusal": "200 with a refusal",
    "empty": "200 with empty content",
    "html": "200 with an HTML page (a proxy's error page)",
    "echo": "500 whose message repeats the request's Authorization header (a leaky proxy)",
}
_SPEC = re.compile(r"^(?P<kind>[a-z0-9_]+)(?::(?P<rate>[0-9.]+))?(?:@(?P<match>[^*]+))?(?:\*(?P<times>\d+))?$")
INJECTION = re.compile(r"ignore (?:all )?(?:previous|prior|above) instructions", re.IGNORECASE)


@dataclass
class FaultRule:
    """A fault answered to a share of the requests, optionally only for items whose text (title, features,
    ...) contains `match`, and only `times` times."""

    kind: str
    rate: float = 1.0
    match: str | None = None
    times: int | None = None
    served: int = 0

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """`KIND[:RATE][@TEXT][*TIMES]`, e.g. `500:0.05`, `timeout@Desk Lamp*2`, `quota`."""
        found = _SPEC.match(spec.strip())
        if not found or found["kind"] not in FAULTS:
            kinds = ", ".join(FAULTS)
            raise BadInputError(f"fault {spec!r}: expected KIND[:RATE][@TEXT][*TIMES] with KIND one of {kinds}")
        rate = float(found["rate"]) if found["rate"] else 1.0
        if not 0 <= rate <= 1:
            raise BadInputError(f"fault {spec!r}: RATE must be between 0 and 1")
        return cls(found["kind"], rate, found["match"], int(found["times"]) if found["times"] else None)

    def describe(self) -> str:
        where = f" for items containing {self.match!r}" if self.match else ""
        times = f", {self.times} time(s)" if self.times is not None else ""
        return f"{self.kind} ({FAULTS[self.kind]}) on {self.rate:.0%} of requests{where}{times}"


class Bucket:
    """A per-minute limit as a token bucket refilled continuously; it holds `burst` at most (default: the
    whole minute's allowance)."""

    def __init__(self, per_minute: int, burst: int = 0) -> None:
        self.limit = per_minute
        self.capacity = float(burst or per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, amount: float) -> float:
        """Take `amount` and return 0, or take nothing and return the seconds until it is there."""
        self._refill()
        amount = min(amount, self.capacity)
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.rate

    def headers(self, name: str) -> dict[str, str]:
        self._refill()
        return {
            f"x-ratelimit-limit-{name}": str(self.limit),
            f"x-ratelimit-remaining-{name}": str(max(0, int(self.level))),
            f"x-ratelimit-reset-{name}": duration((self.capacity - self.level) / self.rate),
        }


def duration(seconds: float) -> str:
    """A duration the way OpenAI writes it in x-ratelimit-reset-*: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s" if minutes else f"{rest:.3g}s"


@dataclass
class FakeLLMConfig:
    """How the fake provider behaves."""

    key: str | None = None  # the API key it accepts; None accepts any
    strong_model: str = "gpt-4o"
    latency_ms: float = 0.0  # mean latency of an answer
    jitter: float = 0.0  # latency spread: uniform in latency_ms * [1 - jitter, 1 + jitter]
    rpm: int = 0  # requests per minute; 0 = unlimited
    tpm: int = 0  # tokens per minute (prompt + max_completion_tokens); 0 = unlimited
    burst: float = 0.0  # share of a minute's allowance that may be used at once; 0 = all of it
    hang_s: float = 120.0  # how long a `timeout` fault keeps the client waiting
    retry_after_s: float = 1.0  # what a `429` fault tells the client to wait
    faults: list[FaultRule] = field(default_factory=list)
    denied_models: set[str] = field(default_factory=set)
    seed: int | None = None
    record: bool = False  # keep every request (path, authorization, body) in `requests`, for tests


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (killed, timed out) is normal here, not a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeLLM:
    """The server. Start it with `with FakeLLM(config) as server:` (or `serve_forever`); `url` is the base URL
    to give the `openai` client, `stats()` what it answered."""

    def __init__(self, config: FakeLLMConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or FakeLLMConfig()
        self.random = random.Random(self.config.seed)
        burst = self.config.burst
        self.requests_bucket = Bucket(self.config.rpm, math.ceil(self.config.rpm * burst)) if self.config.rpm else None
        self.tokens_bucket = Bucket(self.config.tpm, math.ceil(self.config.tpm * burst)) if self.config.tpm else None
        self.counts: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self.httpd = _Server((host, port), _handler(self))
        self.url = f"http://{host}:{self.httpd.server_address[1]}/v1"
        self._thread: threading.Thread | None = None

    # --- lifecycle

    def start(self) -> FakeLLM:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()

    # --- behaviour

    def set_faults(self, specs: list[str]) -> None:
        rules = [FaultRule.parse(s) for s in specs]
        with self._lock:
            self.config.faults = rules

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.counts["requests"],
                "paid": self.counts["paid"],
                "by_outcome": {k: v for k, v in sorted(self.counts.items()) if k not in ("requests", "paid")},
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "faults": [rule.describe() for rule in self.config.faults],
            }

    def _fault_for(self, item: str) -> str | None:
        with self._lock:
            for rule in self.config.faults:
                if rule.match and rule.match not in item:
                    continue
                if rule.times is not None and rule.served >= rule.times:
                    continue
                if self.random.random() < rule.rate:
                    rule.served += 1
                    return rule.kind
        return None

    def _limited(self, tokens: int) -> tuple[float, dict[str, str]]:
        """Seconds to wait when a limit is hit (0 when the request may go), and the rate-limit headers."""
        with self._lock:
            wait = 0.0
            if self.requests_bucket is not None:
                wait = self.requests_bucket.take(1)
            if not wait and self.tokens_bucket is not None:
                wait = self.tokens_bucket.take(tokens)
                if wait and self.requests_bucket is not None:
                    self.requests_bucket.level += 1  # the request did not go through: give its slot back
            headers: dict[str, str] = {}
            for name, bucket in (("requests", self.requests_bucket), ("tokens", self.tokens_bucket)):
                if bucket is not None:
                    headers.update(bucket.headers(name))
            return wait, headers

    def _latency(self) -> float:
        mean = self.config.latency_ms / 1000
        if not mean:
            return 0.0
        with self._lock:
            spread = self.random.uniform(-self.config.jitter, self.config.jitter)
        return max(0.0, mean * (1 + spread))

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def _flight(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def answer(self, body: dict[str, Any], kind: str | None) -> dict[str, Any]:
        """The chat.completion body: the offline writer's content, or the 200-fault the rule asks for."""
        completion = offline.completion_body(body, self.config.strong_model)
        message, choice = completion["choices"][0]["message"], completion["choices"][0]
        prompt = "".join(str(m.get("content") or "") for m in body.get("messages") or [])
        if kind is None and message["content"] and INJECTION.search(prompt.split("<item>", 1)[-1]):
            content = json.loads(message["content"])  # a gullible model: it does what the item text says
            content["description"] = f"{content['description']} My instructions were: {SYSTEM_PROMPT}"
            message["content"] = json.dumps(content)
        if kind == "malformed":
            message["content"] = '{"headline": "Sample", "description": "cut'
        elif kind == "schema":
            message["content"] = json.dumps({"headline": "A headline only"})
        elif kind == "length":
            message["content"] = (message["content"] or "")[:40]
            choice["finish_reason"] = "length"
        elif kind == "content_filter":
            message["content"] = None
            choice["finish_reason"] = "content_filter"
        elif kind == "refusal":
            message["content"], message["refusal"] = None, "I'm sorry, I can't help with that."
        elif kind == "empty":
            message["content"] = ""
        return completion


_ERRORS = {
    "401": (401, "invalid_api_key", "invalid_request_error", "Incorrect API key provided"),
    "quota": (429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota"),
    "429": (429, "rate_limit_exceeded", "requests", "Rate limit reached for requests"),
    "500": (500, None, "server_error", "The server had an error while processing your request"),
    "502": (502, None, "server_error", "Bad gateway"),
    "503": (503, None, "server_error", "The engine is currently overloaded, please try again later"),
}


def _item_text(body: dict[str, Any]) -> str:
    """The item part of the prompt (between <item> tags), which fault rules match against."""
    prompt = "".join(str(m.get("content") or "") for m in body.get("messages") or [])
    found = re.search(r"<item>(.*)</item>", prompt, re.DOTALL)
    return found.group(1) if found else ""


def _handler(server: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (Nagle + delayed ACK)

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, kind: str, headers: dict[str, str], message: str | None = None, label: str = "") -> None:
            status, code, kind_type, text = _ERRORS[kind]
            server._count(label or kind)
            self._send(status, {"error": {"message": message or text, "type": kind_type, "code": code}}, headers)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/_fake/stats"):
                self._send(200, server.stats())
            elif self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in ("fake",)]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

        def do_POST(self) -> None:
            arrived = time.monotonic()
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._send(400, {"error": {"message": "the body is not JSON", "type": "invalid_request_error"}})
                return
            if self.path.rstrip("/").endswith("/_fake/faults"):
                try:
                    server.set_faults(list(body.get("faults") or []))
                except BadInputError as exc:
                    self._send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                    return
                self._send(200, server.stats())
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                return
            auth = self.headers.get("authorization") or ""
            if server.config.record:
                with server._lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "auth": auth,
                            "body": body,
                            "item": _item_text(body),
                            "at": time.monotonic(),
                        }
                    )
            server._count("requests")
            key = server.config.key
            if key is not None and auth != f"Bearer {key}":
                given = auth.removeprefix("Bearer ")
                self._error("401", {}, f"Incorrect API key provided: {given[:3]}***{given[-4:]}")
                return
            if body.get("model") in server.config.denied_models:
                server._count("403")
                self._send(403, {"error": {"message": "no access to this model", "code": "model_access_denied"}})
                return
            prompt = "".join(str(m.get("content") or "") for m in body.get("messages") or [])
            tokens = math.ceil(len(prompt) / 4) + int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
            wait, headers = server._limited(tokens)
            if wait:
                retry = {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
                self._error("429", {**headers, **retry}, label="rate_limited")
                return
            kind = server._fault_for(_item_text(body))
            if kind == "drop":
                server._count("drop")
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            answer = server.answer(body, kind) if kind not in (*_ERRORS, "echo", "html") else None
            server._flight(1)
            try:
                # the latency is the time to answer, from the request's arrival: our own work counts against it
                wait = server.config.hang_s if kind == "timeout" else server._latency() - (time.monotonic() - arrived)
                time.sleep(max(0.0, wait))
            finally:
                server._flight(-1)
            if kind == "echo":
                self._error("500", headers, f"upstream failed for request with authorization {auth}", label="echo")
                return
            if kind in _ERRORS:
                retry = {"retry-after": f"{server.config.retry_after_s:g}"} if kind == "429" else {}
                self._error(kind, {**headers, **retry})
                return
            if kind == "html":
                server._count("html")
                page = b"<html><body>502 Bad Gateway from a proxy</body></html>"
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            server._count("paid")
            server._count(kind or "ok")
            assert answer is not None
            self._send(200, answer, headers)

    return Handler
