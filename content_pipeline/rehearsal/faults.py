"""The faults the fake provider answers on demand, and its per-minute limits (token buckets)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from content_pipeline.errors import BadInputError

FAULTS = {
    "429": "rate limited: 429 rate_limit_exceeded with Retry-After",
    "quota": "429 insufficient_quota",
    "resource_unavailable": "429 resource_unavailable: no capacity at the flex tier now (flex requests only)",
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
    "leak_whole": "200 whose description repeats the request's whole system message",
    "leak_partial": "200 whose description repeats a run of words from the middle of the system message",
    "leak_canary": "200 with a reworded leak that repeats the canary token of the system message",
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


ERRORS = {
    "401": (401, "invalid_api_key", "invalid_request_error", "Incorrect API key provided"),
    "quota": (429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota"),
    "429": (429, "rate_limit_exceeded", "requests", "Rate limit reached for requests"),
    "resource_unavailable": (429, "resource_unavailable", "server_error", "Resource unavailable for flex processing"),
    "500": (500, None, "server_error", "The server had an error while processing your request"),
    "502": (502, None, "server_error", "Bad gateway"),
    "503": (503, None, "server_error", "The engine is currently overloaded, please try again later"),
}
