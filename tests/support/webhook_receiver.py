"""A webhook receiver on loopback, as a site would run one: it verifies every delivery's HMAC-SHA256
signature with the shared secret, and keeps what it received (answering 401 to a bad signature)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from content_pipeline.publish.webhook import KEY_HEADER, SIGNATURE_HEADER, verify


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


class WebhookReceiver:
    """`with WebhookReceiver(secret) as receiver:` serves on a free loopback port until the block ends."""

    def __init__(self, secret: str) -> None:
        self.receiver = Receiver(secret)
        handler = type("Handler", (_Handler,), {"receiver": self.receiver})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.receiver.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/content"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
