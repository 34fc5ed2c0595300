"""A loopback HTTP proxy in front of a real server that injects the faults the server cannot make on demand."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal

FaultKind = Literal["429", "500", "drop-after", "call-after"]
KINDS = ("429", "500", "drop-after", "call-after")
UPSTREAM_S = 60.0  # timeout of the upstream connection (connect and each read)
IDLE_S = 30.0  # a kept-alive client connection idle this long is closed
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
}


@dataclass
class Fault:
    """`times` more requests whose method matches (None: any) and whose path starts with `path` get `kind`."""

    method: str | None
    path: str
    kind: FaultKind
    times: int
    callback: Callable[[], None] | None = None


class FaultProxy:
    """Forwards every request verbatim to `upstream_url` (Host rewritten to the upstream's), except those that match
    a queued fault. `requests` logs (method, path without query, upstream status or the fault's kind, or
    "upstream-error" when the upstream could not be reached: the client then gets 502)."""

    def __init__(self, upstream_url: str, *, upstream_timeout: float = UPSTREAM_S) -> None:
        parts = urllib.parse.urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an http:// upstream is needed, not {upstream_url!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_prefix = parts.path.rstrip("/")
        self.upstream_timeout = upstream_timeout
        self.requests: list[tuple[str, str, int | str]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def add(
        self,
        *,
        method: str | None,
        path: str,
        kind: FaultKind,
        times: int = 1,
        callback: Callable[[], None] | None = None,
    ) -> None:
        """Queue a fault for the next `times` matching requests (faults are tried in the order added)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if (kind == "call-after") != (callback is not None):
            raise ValueError("a callback goes with kind 'call-after' and only with it")
        with self._lock:
            self._faults.append(Fault(method.upper() if method else None, path, kind, times, callback))

    def pending(self) -> list[Fault]:
        """The faults not yet used up."""
        with self._lock:
            return [f for f in self._faults if f.times > 0]

    def clear(self) -> None:
        """Drop the queued faults and the request log."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def count(self, method: str, path: str) -> int:
        """How many requests with this method and exactly this path (query left out) came in."""
        with self._lock:
            return sum(1 for m, p, _ in self.requests if m == method.upper() and p == path)

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.method in (None, method) and path.startswith(fault.path):
                    fault.times -= 1
                    return fault
            return None

    def _log(self, method: str, path: str, outcome: int | str) -> None:
        with self._lock:
            self.requests.append((method, path, outcome))

    def start(self) -> FaultProxy:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5.0)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_S

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout)
            try:
                conn.putrequest(
                    self.command, proxy.upstream_prefix + self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    if name.lower() in HOP_BY_HOP or name.lower() in ("host", "content-length"):
                        continue
                    conn.putheader(name, value)
                conn.putheader("Host", f"{proxy.upstream_host}:{proxy.upstream_port}")
                if body or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                resp = conn.getresponse()
                data = resp.read()
                headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
                return resp.status, headers, data
            finally:
                conn.close()

        def _handle(self) -> None:
            method, path = self.command, urllib.parse.urlsplit(self.path).path
            body = self._body()
            fault = proxy._take(method, path)
            if fault is not None and fault.kind in ("429", "500"):
                proxy._log(method, path, fault.kind)
                extra = [("Retry-After", "1")] if fault.kind == "429" else []
                message = b'{"code":"fault_proxy","message":"injected ' + fault.kind.encode() + b'"}'
                self._answer(int(fault.kind), [("Content-Type", "application/json"), *extra], message)
                return
            try:
                status, headers, data = self._forward(body)
            except (OSError, http.client.HTTPException) as e:
                proxy._log(method, path, "upstream-error")
                self._answer(502, [("Content-Type", "text/plain")], f"upstream: {e}".encode())
                return
            if fault is None:
                proxy._log(method, path, status)
                self._answer(status, headers, data)
                return
            proxy._log(method, path, fault.kind)  # forwarded, so it took effect; the client gets no answer
            try:
                if fault.callback is not None:
                    fault.callback()
            finally:
                self.close_connection = True

    for verb in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        setattr(Handler, f"do_{verb}", Handler._handle)
    return Handler
