"""A minimal OpenAI-compatible HTTP server on loopback, answering with the offline model's content."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from content_pipeline import offline


class LLMServer:
    """Serves /v1/chat/completions; `mode` switches to 401 or insufficient_quota answers."""

    def __init__(self, key: str, strong_model: str = "gpt-4o") -> None:
        self.key, self.strong_model, self.mode = key, strong_model, "ok"
        self.denied_models: set[str] = set()
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
                if self.headers.get("authorization") != f"Bearer {server.key}" or server.mode == "401":
                    shown = (self.headers.get("authorization") or "")[-12:]
                    self._send(
                        401, {"error": {"message": f"Incorrect API key provided: {shown}", "code": "invalid_api_key"}}
                    )
                elif body.get("model") in server.denied_models:
                    self._send(403, {"error": {"message": "no access to this model", "code": "model_access_denied"}})
                elif server.mode == "html":
                    data = b"<html><body>502 Bad Gateway from a proxy</body></html>"
                    self.send_response(200)
                    self.send_header("content-type", "text/html")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif server.mode == "quota":
                    self._send(429, {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}})
                else:
                    self._send(200, offline.completion_body(body, server.strong_model))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
