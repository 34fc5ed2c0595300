"""Leases: a lock with an owner and an expiry, taken with create-if-absent, renewed or stolen with CAS."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime

from content_pipeline.errors import LeaseHeldError
from content_pipeline.store.base import Store
from content_pipeline.store.host import Holder
from content_pipeline.store.renewal import Renewal


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class Lease:
    """A named lease in the store. A live holder renews it in the background; an expired lease, or one
    whose holder process is gone from this host, is taken over at once."""

    def __init__(self, store: Store, key: str, holder: Holder, ttl_s: float, what: str) -> None:
        self.store, self.key, self.holder, self.ttl_s, self.what = store, key, holder, ttl_s, what
        self.token = secrets.token_hex(8)
        self.version: str | None = None
        self.took_over: str | None = None
        self._renewal: Renewal | None = None

    def _body(self) -> bytes:
        expires = time.time() + self.ttl_s
        return json.dumps(
            {**self.holder.to_dict(), "token": self.token, "expires_ts": expires, "expires_at": _iso(expires)}
        ).encode()

    def _mine(self) -> bool:
        found = self.store.get_versioned(self.key)
        if found is None or json.loads(found[0]).get("token") != self.token:
            return False
        self.version = found[1]
        return True

    def _holder(self, raw: bytes) -> tuple[Holder | None, float]:
        """Who holds the lease and until when, from its bytes (None, 0: unreadable, so stale)."""
        try:
            current = json.loads(raw)
            return Holder(current["host"], int(current["pid"]), current["run_id"]), float(current["expires_ts"])
        except (ValueError, KeyError, TypeError):
            return None, 0.0

    def try_acquire(self) -> None:
        """Take the lease or raise LeaseHeldError naming the holder and the expiry."""
        for _ in range(5):
            if self.store.put_if_absent(self.key, self._body()):
                if self._mine():
                    return
                continue
            found = self.store.get_versioned(self.key)
            if found is None:
                continue
            raw, version = found
            other, expires = self._holder(raw)
            if other is not None and expires >= time.time() and not other.gone():
                raise LeaseHeldError(
                    f"{self.what} is already running: lease held by {other.describe()} until {_iso(expires)}"
                )
            if self.store.put_if_match(self.key, self._body(), version) and self._mine():
                self.took_over = other.describe() if other else "an unreadable lease"
                return
        raise LeaseHeldError(f"{self.what}: could not take the lease {self.key!r} (contended)")

    def acquire(self, wait_s: float = 0.0) -> None:
        """Take the lease, waiting up to `wait_s` for a live holder to let go; then renew it every third
        of its lifetime."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.try_acquire()
                break
            except LeaseHeldError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        self._renewal = Renewal(f"lease-{self.key}", self.ttl_s / 3, self._renew).start()

    def _renew(self) -> bool:
        if self.version is None or not self.store.put_if_match(self.key, self._body(), self.version):
            return False
        self._mine()
        return True

    def release(self) -> None:
        if self._renewal is not None:
            self._renewal.stop()
        if self.version is not None:
            self.store.delete_if_match(self.key, self.version)
            self.version = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
