"""A loopback Google Search Console API to rehearse an engagement pull: the OAuth token endpoint a service
account signs in at (its RS256 JWT verified against the account's key), and `searchAnalytics.query` (page x
date: clicks, impressions, ctr, position; `startRow`/`rowLimit` paging; `dataState` with the first incomplete
date), with the real API's error shape (`{"error": {"code", "message", "status"}}`) for a bad request."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from content_pipeline.rehearsal.loopback import Loopback, QuietHandler, reply

SCOPE = "https://www.googleapis.com/auth/webmasters.readonly"
QUERY_PATH = "/webmasters/v3/sites/{site}/searchAnalytics/query"
DIMENSIONS = {"page", "date", "query", "country", "device"}


@dataclass
class SearchConsoleSite:
    """One property, the service account allowed to read it, and each page's figures per day. Days on or
    after `first_incomplete` are served only with dataState "all" (Google's data is final after ~3 days)."""

    site_url: str
    client_email: str
    public_key: rsa.RSAPublicKey
    pages: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (page URL, day) -> figures
    first_incomplete: str | None = None
    tokens: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)


def service_account(client_email: str, token_uri: str) -> tuple[dict[str, str], rsa.RSAPublicKey]:
    """A new service account key, as Google's JSON key file has it, and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    info = {
        "type": "service_account",
        "client_email": client_email,
        "private_key": pem.decode(),
        "token_uri": token_uri,
    }
    return info, key.public_key()


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _grant(site: SearchConsoleSite, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
    """The token endpoint: an RS256 JWT of the site's service account, for the read-only scope, unexpired."""
    if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or "assertion" not in form:
        return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
    try:
        head, body, signature = form["assertion"][0].split(".")
        site.public_key.verify(_b64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        claims = json.loads(_b64(body))
    except (ValueError, InvalidSignature):
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    if claims.get("iss") != site.client_email or claims.get("scope") != SCOPE or claims.get("exp", 0) < time.time():
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: issuer, scope or expiry."}
    token = secrets.token_urlsafe(24)
    site.tokens.add(token)
    return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}


def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "message": message, "status": status}}


def _query(site: SearchConsoleSite, body: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict):
        return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
    try:
        first, last = date.fromisoformat(body["startDate"]), date.fromisoformat(body["endDate"])
    except (KeyError, TypeError, ValueError):
        return _error(400, "INVALID_ARGUMENT", "startDate and endDate are required, as YYYY-MM-DD.")
    dims, limit, start = body.get("dimensions", []), body.get("rowLimit", 1000), body.get("startRow", 0)
    if not isinstance(dims, list) or any(d not in DIMENSIONS for d in dims) or first > last:
        return _error(400, "INVALID_ARGUMENT", f"Invalid dimensions or date range: {json.dumps(dims)}")
    if not isinstance(limit, int) or not 1 <= limit <= 25000 or not isinstance(start, int) or start < 0:
        return _error(400, "INVALID_ARGUMENT", "rowLimit must be 1-25000 and startRow not negative.")
    if body.get("dataState", "final") not in ("final", "all"):
        return _error(400, "INVALID_ARGUMENT", f"Invalid value at 'data_state' ({body.get('dataState')})")
    cut = site.first_incomplete if body.get("dataState", "final") == "final" else None
    rows = []
    for (page, day), figures in sorted(site.pages.items()):
        if first.isoformat() <= day <= last.isoformat() and (cut is None or day < cut):
            keys = [page if d == "page" else day for d in dims if d in ("page", "date")]
            impressions, clicks = figures.get("impressions", 0.0), figures.get("clicks", 0.0)
            ctr = clicks / impressions if impressions else 0.0
            rows.append(
                {
                    "keys": keys,
                    "clicks": clicks,
                    "impressions": impressions,
                    "ctr": ctr,
                    "position": figures.get("position", 0.0),
                }
            )
    answer: dict[str, Any] = {"rows": rows[start : start + limit], "responseAggregationType": "byPage"}
    if body.get("dataState") == "all" and site.first_incomplete:
        answer["metadata"] = {"firstIncompleteDate": site.first_incomplete}
    if not answer["rows"]:
        del answer["rows"]  # (the real API leaves the key out when nothing matched)
    return 200, answer


class _Handler(QuietHandler):
    site: SearchConsoleSite
    lock: threading.Lock

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/token":
            code, body = _grant(self.site, parse_qs(raw.decode()))
            return reply(self, code, body)
        expected = QUERY_PATH.format(site=self.site.site_url)
        with self.lock:
            self.site.requests.append({"path": unquote(self.path), "body": raw.decode(errors="replace")})
        if unquote(self.path) != expected:
            return reply(self, *_error(404, "NOT_FOUND", "Requested entity was not found."))
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.site.tokens:
            return reply(self, *_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return reply(self, *_query(self.site, body))


class SearchConsoleRehearsal(Loopback):
    """`with SearchConsoleRehearsal(site) as url:` serves `site` on a free loopback port until the block ends;
    its token endpoint is `url + "/token"`."""

    def __init__(self, site: SearchConsoleSite) -> None:
        self.site = site
        super().__init__(type("Handler", (_Handler,), {"site": site, "lock": threading.Lock()}), "gsc-rehearsal")
