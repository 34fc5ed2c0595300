"""A webhook target: one JSON POST per post, signed with HMAC-SHA256 of the body, so the receiver can verify
who sent it; the idempotency key rides along, so a receiver can drop a delivery it has seen."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx2

from content_pipeline.publish.post import Post
from content_pipeline.publish.targets import RemotePost, TargetFailed, TargetRefused, send

SIGNATURE_HEADER = "X-Content-Pipeline-Signature"  # sha256=<hex HMAC-SHA256 of the body>
KEY_HEADER = "Idempotency-Key"


def signature(secret: str, body: bytes) -> str:
    """The header value for `body`: `sha256=` and the hex HMAC-SHA256 under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver checks: the header is the body's signature under the shared secret."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


def _at(slot: datetime | None) -> str | None:
    """When the receiver should publish the post: the slot (UTC ISO), None for at once."""
    return slot.astimezone(UTC).isoformat(timespec="seconds") if slot else None


class WebhookTarget:
    """POSTs `{"event", "idempotency_key", "slug", "content_hash", "post", "publish_at", "sent_at"}` to `url`
    (`publish_at`: the posting plan's slot, null for at once). A webhook
    cannot be asked what it holds: a post is found only by the id an earlier delivery stored, and a
    delivery retried after a crash carries the same idempotency key."""

    def __init__(self, name: str, url: str, secret: str, timeout_s: float = 30.0) -> None:
        if not secret:
            raise ValueError("a webhook target needs a signing secret (PUBLISH_WEBHOOK_SECRET)")
        self.name, self.url, self._secret = name, url, secret
        self._client = httpx2.Client(timeout=timeout_s)

    def _send(self, event: str, slug: str, key: str, extra: dict[str, Any]) -> RemotePost:
        sent_at = datetime.now(UTC).isoformat(timespec="seconds")
        payload = {"event": event, "idempotency_key": key, "slug": slug, **extra, "sent_at": sent_at}
        body = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self._secret, body), KEY_HEADER: key}
        where = f"webhook {self.name}"
        response = send(self._client, where, "POST", self.url, content=body, headers=headers)
        code = response.status_code
        if code in (401, 403):
            raise TargetRefused(
                f"{where}: {code}: the receiver refused the delivery (check PUBLISH_WEBHOOK_SECRET)", code
            )
        if code >= 300:
            raise TargetFailed(f"{where}: POST: {code}", code)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        return RemotePost(str(answer.get("id") or key), answer.get("link"), event, code)

    def check(self) -> tuple[str, ...]:
        """Nothing to ask a webhook before the first delivery (a refused signature shows on the first)."""
        return ()

    def find(self, slug: str, post_id: str | None) -> RemotePost | None:
        return RemotePost(post_id, None, "delivered", None) if post_id else None

    def create(self, post: Post, key: str, slot: datetime | None = None) -> RemotePost:
        extra = {"content_hash": post.content_hash, "post": post.payload(), "publish_at": _at(slot)}
        return self._send("publish", post.slug, key, extra)

    def update(self, found: RemotePost, post: Post, key: str, slot: datetime | None = None) -> RemotePost:
        extra = {"content_hash": post.content_hash, "post": post.payload(), "post_id": found.post_id}
        return self._send("update", post.slug, key, extra | {"publish_at": _at(slot)})

    def go_live(self, found: RemotePost, slug: str) -> RemotePost:
        """A receiver publishes at `publish_at` itself: nothing a sender can ask it, nothing to send."""
        return found

    def take_down(self, found: RemotePost, slug: str, trash: bool) -> RemotePost:
        done = self._send(
            "trash" if trash else "unpublish", slug, f"takedown-{found.post_id}", {"post_id": found.post_id}
        )
        return RemotePost(found.post_id, found.link, "trash" if trash else "draft", done.code)

    def close(self) -> None:
        self._client.close()
