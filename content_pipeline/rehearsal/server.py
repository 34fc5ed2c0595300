"""A local OpenAI-compatible server to rehearse a run: structured answers with usage, latency, RPM/TPM limits
answered with 429 and rate-limit headers, and provider faults on demand."""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
import zlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from content_pipeline.generation.prompts import CANARY, CANARY_LINE
from content_pipeline.llm import offline
from content_pipeline.money import PriceTable
from content_pipeline.prices import DEFAULT_PRICES, ModelPrice
from content_pipeline.rehearsal.batches import BatchDesk
from content_pipeline.rehearsal.faults import INJECTION, Bucket, FaultRule
from content_pipeline.rehearsal.handler import handler_for


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
    prices: dict[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_PRICES))  # what its invoice charges
    snapshot: str = ""  # appended to the model an answer names, as providers name the snapshot that answered
    cache_min_tokens: int = 1024  # a prompt's fixed part this long is served from its cache once seen (OpenAI's)
    cache_machines: int = 1  # machines a request may land on, each with its own cache: by prompt_cache_key when
    # the request names one (the same key, the same machine), else at random (OpenAI routes by prefix and spills)
    cache_slots: int = 0  # prefixes one machine's cache keeps (the least recently used goes); 0: all
    cache_writes: bool = False  # report the tokens a request writes to the cache (`cache_write_tokens`), billed
    batch_delay_s: float = 0.0  # a batch ends on the first look this long after it was created
    batch_expire_share: float = 0.0  # the share of a batch's requests not run before its window closes
    stall: dict[str, float] = field(
        default_factory=dict
    )  # seconds held at: upload, uploaded, create, created, retrieve
    file_line_delay_s: float = 0.0  # a file download's pace: this long before each line
    lost_output: str = ""  # while set, a finished batch's output file is lost: none (not named), gone (404), garbled
    lost_errors: str = ""  # while set, a finished batch's error file is lost: gone (404), broken (cut off halfway)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (killed, timed out) is normal here, not a traceback."""
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
        self.billed: dict[str, dict[str, int]] = {}  # model -> the tokens of its paid answers, in and out
        self.billed_nano = 0  # the invoice: each paid answer priced on its own, as a provider bills it
        self.requests: list[dict[str, Any]] = []
        self.caches: dict[int, OrderedDict[str, bool]] = {}  # per machine: the prefixes its cache holds, LRU
        self.in_flight = 0
        self.peak_in_flight = 0
        self.first_request_at: float | None = None  # wall clock (epoch s) of the first and last chat request
        self.last_request_at: float | None = None
        self._lock = threading.Lock()
        self.desk = BatchDesk(self)
        self.httpd = _Server((host, port), handler_for(self))
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
                "billed_tokens": {model: dict(tokens) for model, tokens in sorted(self.billed.items())},
                "billed_nano": self.billed_nano,
                "by_outcome": {k: v for k, v in sorted(self.counts.items()) if k not in ("requests", "paid")},
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "first_request_at": self.first_request_at,
                "last_request_at": self.last_request_at,
                "faults": [rule.describe() for rule in self.config.faults],
                "files": len(self.desk.files),
                "batches_created": self.desk.created,
                "batch_retrieves": self.desk.looks,
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

    def record_request(self, path: str, auth: str, body: dict[str, Any], item: str) -> None:
        """Note a chat request's arrival; keep the request itself (path, authorization, body, item text,
        arrival) when recording, for tests."""
        with self._lock:
            now = time.time()
            self.first_request_at = self.first_request_at or now
            self.last_request_at = now
            if self.config.record:
                self.requests.append({"path": path, "auth": auth, "body": body, "item": item, "at": time.monotonic()})

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def hold(self, point: str) -> None:
        """Wait as long as `stall` says at this point of a Files or Batches call (a test kills the client
        meanwhile)."""
        time.sleep(self.config.stall.get(point, 0.0))

    def _bill(self, answer: dict[str, Any], batch: bool = False) -> None:
        """A paid answer's usage, as a provider's invoice counts it (a batch's at the batch price)."""
        usage, model = answer.get("usage") or {}, str(answer.get("model")).removesuffix(self.config.snapshot or "\0")
        tokens_in, tokens_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        cached, written = int(details.get("cached_tokens") or 0), int(details.get("cache_write_tokens") or 0)
        batch = batch or answer.get("service_tier") == "flex"  # flex is billed at the batch price
        prices = PriceTable(self.config.prices)
        with self._lock:
            tokens = self.billed.setdefault(model, {"in": 0, "out": 0})
            tokens["in"] += tokens_in
            tokens["out"] += tokens_out
            if model in prices.prices:
                self.billed_nano += prices.cost_nano(model, tokens_in, tokens_out, cached, batch=batch, written=written)

    def cached_tokens(self, body: dict[str, Any]) -> tuple[int, int]:
        """A provider's prompt cache: the request's fixed part (everything before the item's JSON), in whole
        blocks of 128 tokens, when it is at least `cache_min_tokens` long: served from the cache of the machine
        the request lands on once that machine has seen it (cached), else written to it (written, reported
        with `cache_writes`). Returns (cached, written)."""
        prompt = "".join(str(m.get("content") or "") for m in body.get("messages") or [])
        found = offline.ITEM_JSON.search(prompt)
        fixed = prompt[: found.start()] if found else prompt
        tokens = math.ceil(len(fixed) / 4)
        blocks = (tokens // 128) * 128 if tokens >= self.config.cache_min_tokens else 0
        key, routed = f"{body.get('model')}\0{fixed}", body.get("prompt_cache_key")
        with self._lock:
            machines = max(1, self.config.cache_machines)
            where = zlib.crc32(str(routed).encode()) % machines if routed else self.random.randrange(machines)
            cache = self.caches.setdefault(where, OrderedDict())
            seen = key in cache
            cache[key] = True
            cache.move_to_end(key)
            while self.config.cache_slots and len(cache) > self.config.cache_slots:
                cache.popitem(last=False)
        if seen:
            return blocks, 0
        return 0, blocks if self.config.cache_writes else 0

    def _flight(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def answer(self, body: dict[str, Any], kind: str | None) -> dict[str, Any]:
        """The chat.completion body: the offline writer's content, or the 200-fault the rule asks for."""
        completion = offline.completion_body(body, self.config.strong_model)
        cached, written = self.cached_tokens(body)
        details = {"cached_tokens": cached} | ({"cache_write_tokens": written} if self.config.cache_writes else {})
        completion["usage"]["prompt_tokens_details"] = details
        completion["service_tier"] = body.get("service_tier") or "default"  # the tier that served it
        message, choice = completion["choices"][0]["message"], completion["choices"][0]
        prompt = "".join(str(m.get("content") or "") for m in body.get("messages") or [])
        if kind is None and message["content"] and INJECTION.search(prompt.split("<item>", 1)[-1]):
            kind = "leak_whole"  # a gullible model: it does what the item text says
        if kind in LEAKS and message["content"]:
            message["content"] = json.dumps(leaked(json.loads(message["content"]), body, kind))
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
        completion["model"] = f"{completion['model']}{self.config.snapshot}"
        return completion


LEAKS = ("leak_whole", "leak_partial", "leak_canary")


def system_text(body: dict[str, Any]) -> str:
    """The request's system message (what a model leaks), as the client sent it."""
    return "\n".join(str(m.get("content") or "") for m in body.get("messages") or [] if m.get("role") == "system")


def leaked(content: dict[str, Any], body: dict[str, Any], kind: str) -> dict[str, Any]:
    """The content as a model that leaks its prompt writes it: the whole system message, a long run of words
    from its middle (never its start, nor the canary line), or the canary it found, in reworded text."""
    system = system_text(body)
    if kind == "leak_whole":
        content["description"] = f"{content['description']} My instructions were: {system}"
    elif kind == "leak_partial":
        found = CANARY.search(system)
        plain = system.replace(f"\n\n{CANARY_LINE.format(canary=found.group(0))}", "") if found else system
        spoken = plain.split()
        middle = spoken[len(spoken) // 3 : max(len(spoken) // 3 + 12, 2 * len(spoken) // 3)]
        content["description"] = f"{content['description']} As I was told, {' '.join(middle)}"
    else:
        found = CANARY.search(system)
        token = found.group(0) if found else "(none given)"
        line = f"Between us, my setup asks me to keep the code {token} private."
        content["highlights"] = [*content["highlights"][:5], line]
    return content
