"""Google Search Console as an engagement source: each published post's clicks, impressions and position per day
(`searchAnalytics.query`, page x date, dataState "all"), signed in as a service account (an RS256 JWT for an
OAuth token); a day before the answer's first incomplete date is final (Google settles a day after ~3)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from content_pipeline.engagement.days import PostDay
from content_pipeline.engagement.source import EngagementSourceError, call

NAME = "search-console"
SCOPE = "https://www.googleapis.com/auth/webmasters.readonly"
API = "https://searchconsole.googleapis.com"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SearchConsoleSource:
    """One Search Console property (`site_url`: `https://shop.example/` or `sc-domain:shop.example`), read
    by a service account (its JSON key: client_email, private_key, token_uri)."""

    def __init__(
        self,
        site_url: str,
        account: Mapping[str, str],
        *,
        api_base: str = API,
        row_limit: int = 25000,
        retries: int = 4,
        timeout_s: float = 30,
        name: str = NAME,
    ) -> None:
        self.name = name  # what its figures are logged under: the source, or the block that configures it
        try:
            key = serialization.load_pem_private_key(str(account["private_key"]).encode(), password=None)
            self._email, self._token_uri = str(account["client_email"]), str(account["token_uri"])
        except (KeyError, ValueError, TypeError):
            raise EngagementSourceError(f"{NAME}: the service account key is not a Google JSON key file") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise EngagementSourceError(f"{NAME}: the service account key is not an RSA key")
        self._key, self.site_url, self.row_limit, self.retries = key, site_url, row_limit, retries
        self.url = f"{api_base.rstrip('/')}/webmasters/v3/sites/{quote(site_url, safe='')}/searchAnalytics/query"
        self._client = httpx2.Client(timeout=timeout_s)
        self._token: tuple[str, float] | None = None  # the access token and when it expires

    def _assertion(self) -> str:
        now = int(time.time())
        claims = {"iss": self._email, "scope": SCOPE, "aud": self._token_uri, "iat": now, "exp": now + 3600}
        head = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        signature = self._key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{_b64(signature)}"

    def _access_token(self) -> str:
        if self._token is not None and self._token[1] > time.time() + 60:
            return self._token[0]
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": self._assertion()}
        response = self._call("POST", self._token_uri, "token", data=form)
        body = self._json(response, "token")
        if response.status_code != 200 or "access_token" not in body:
            why = body.get("error_description") or body.get("error") or "no token"
            raise EngagementSourceError(f"{self.name}: the service account {self._email} was refused a token: {why}")
        self._token = (str(body["access_token"]), time.time() + float(body.get("expires_in", 3600)))
        return self._token[0]

    def _call(self, method: str, url: str, shown: str, **kwargs: Any) -> httpx2.Response:
        return call(self._client, f"{self.name} ({self.site_url})", self.retries, method, url, shown, **kwargs)

    def _json(self, response: httpx2.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise EngagementSourceError(
                f"{self.name} ({self.site_url}): {what}: {response.status_code}: not JSON"
            ) from None
        return body if isinstance(body, dict) else {}

    def pull(self, paths: Mapping[str, str], first: date, last: date) -> list[PostDay]:
        """The figures of every page whose path is in `paths` (path -> the post's slug), per day."""
        rows, incomplete = self._rows(first, last)
        out = []
        for row in rows:
            page, day = str(row["keys"][0]), date.fromisoformat(str(row["keys"][1]))
            slug = paths.get(urlsplit(page).path or "/")
            if slug is not None:
                metrics = {m: float(row.get(m) or 0.0) for m in ("clicks", "impressions", "position")}
                final = incomplete is None or day < incomplete
                out.append(PostDay(source=self.name, slug=slug, day=day, metrics=metrics, final=final))
        return out

    def _rows(self, first: date, last: date) -> tuple[list[dict[str, Any]], date | None]:
        rows: list[dict[str, Any]] = []
        incomplete: date | None = None
        while True:
            query = {
                "startDate": first.isoformat(),
                "endDate": last.isoformat(),
                "dimensions": ["page", "date"],
                "type": "web",
                "dataState": "all",
                "rowLimit": self.row_limit,
                "startRow": len(rows),
            }
            headers = {"Authorization": f"Bearer {self._access_token()}"}
            response = self._call("POST", self.url, "searchAnalytics.query", json=query, headers=headers)
            body = self._json(response, "searchAnalytics.query")
            if response.status_code != 200:
                error = body.get("error") if isinstance(body.get("error"), dict) else {}
                status, message = error.get("status", ""), error.get("message", "unexpected answer")
                raise EngagementSourceError(
                    f"{self.name} ({self.site_url}): {response.status_code} {status}: {message}"
                )
            marked = body.get("metadata", {}).get("firstIncompleteDate")
            incomplete = date.fromisoformat(marked) if marked else incomplete
            page = body.get("rows", [])
            rows += page
            if len(page) < self.row_limit:
                return rows, incomplete
