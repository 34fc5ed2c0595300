"""A webhook receiver on loopback, as a site would run one: it verifies every delivery's HMAC-SHA256
signature with the shared secret, and keeps what it received (answering 401 to a bad signature)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from content_pipeline.publish.webhook import KEY_HEADER, SIGNATURE_HEADER, verify
from content_pipeline.rehearsal.loopback import Loopback


@dataclass
class Delivery:
    body: bytes
    verified: bool
    key: str | None

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""

    def by_key(self) -> dict[str, list[Delivery]]:
        found: dict[str, list[Delivery]] = {}
        for d in self.deliveries:
            found.setdefault(str(d.key), []).append(d)
        return found


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = verify(self.receiver.secret, body, self.headers.get(SIGNATURE_HEADER))
        self.receiver.deliveries.append(Delivery(body, ok, self.headers.get(KEY_HEADER)))
        answer = json.dumps({"received": ok}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


class WebhookReceiver(Loopback):
    """`with WebhookReceiver(secret) as receiver:` serves on a free loopback port until the block ends."""

    def __init__(self, secret: str) -> None:
        self.receiver = Receiver(secret)
        super().__init__(type("Handler", (_Handler,), {"receiver": self.receiver}), "webhook-receiver")
        self.receiver.url = f"{self.url}/hooks/content"

    def __enter__(self) -> Receiver:  # type: ignore[override]
        super().__enter__()
        return self.receiver
