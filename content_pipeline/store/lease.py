"""Leases: a lock with an owner and an expiry, taken, renewed, taken over and released as versions of a cell."""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import UTC, datetime

from content_pipeline.errors import LeaseHeldError, LeaseLostError
from content_pipeline.store import layout
from content_pipeline.store.base import Store
from content_pipeline.store.cell import RELEASED, Cell
from content_pipeline.store.host import Holder
from content_pipeline.store.renewal import Renewal


def iso_at(ts: float) -> str:
    """A UNIX time as ISO 8601 UTC to the second, as leases and sweeps name expiries."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class Lease:
    """A named lease in the store, a cell whose versions say who holds it until when. A live holder renews
    it in the background; an expired lease, or one whose holder process is gone from this host, is taken
    over at once. Taking, renewing, taking over and releasing each create the next version, so each is
    conditional: a holder that lost its lease can neither renew nor release the new holder's. `check`
    renews it at once, before each effect: a holder paused past its expiry and taken over stops there."""

    def __init__(self, store: Store, key: str, holder: Holder, ttl_s: float, what: str) -> None:
        self.store, self.key, self.holder, self.ttl_s, self.what = store, key, holder, ttl_s, what
        self.cell = Cell(store, key)
        self.token = secrets.token_hex(8)
        self.version: int | None = None  # the cell version this holder wrote last
        self.took_over: str | None = None
        self.lost_to: str | None = None  # who took the lease over while this holder was paused
        self._renewal: Renewal | None = None
        self._lock = threading.Lock()  # the renewal thread and `check` swap one version at a time

    def _body(self) -> bytes:
        expires = time.time() + self.ttl_s
        return json.dumps(
            {**self.holder.to_dict(), "token": self.token, "expires_ts": expires, "expires_at": iso_at(expires)}
        ).encode()

    def try_acquire(self) -> None:
        """Take the lease or raise LeaseHeldError naming the holder and the expiry."""
        for _ in range(5):
            raw, version = self.cell.read()
            other, expires = lease_holder(raw) if raw is not None else (None, 0.0)
            if other is not None and gone_because(other, expires, time.time()) is None:
                raise LeaseHeldError(
                    f"{self.what} is already running: lease held by {other.describe()} until {iso_at(expires)}"
                )
            if self.cell.swap(self._body(), version):
                self.version = version + 1
                if raw is not None:
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
        """Write the next version on the one this holder wrote last; False once another holder took over."""
        with self._lock:
            if self.version is None or self.lost_to is not None:
                return False
            if self.cell.swap(self._body(), self.version):
                self.version += 1
                return True
            raw, version = self.cell.read()
            if raw is not None and self._mine(raw) and self.cell.swap(self._body(), version):
                self.version = version + 1  # our own renewal, whose answer the store lost
                return True
            self.lost_to = self._taker(raw)
            return False

    def _taker(self, current: bytes | None) -> str:
        """Who took the lease over: the writer of the version after ours (kept a while), else the holder now."""
        assert self.version is not None
        after = self.store.get(self.cell.key(self.version + 1))
        if after == RELEASED:
            return "nobody (another process released it as gone: a sweep, or a run that freed its claims)"
        holder = lease_holder(after)[0] if after else None
        if holder is None and current is not None:
            holder = lease_holder(current)[0]
        return holder.describe() if holder is not None else "another process (the lease is free now)"

    def _mine(self, raw: bytes) -> bool:
        try:
            return bool(json.loads(raw).get("token") == self.token)
        except (ValueError, AttributeError):
            return False

    def check(self, before: str) -> None:
        """Renew the lease now, on the version this holder wrote last: it succeeds only while nobody took
        the lease over, so it checks and extends the hold in one step (the background renewal may be as
        stale as the rest of a process just resumed). LeaseLostError names the new holder and `before`, the
        effect or append not made."""
        if not self._renew():
            raise LeaseLostError(
                f"{self.what}: lost the lease {self.key!r} to {self.lost_to or 'nobody (not held)'}: "
                f"stopped before {before}"
            )

    def release(self) -> None:
        if self._renewal is not None:
            self._renewal.stop()
        if self.version is not None:
            self.cell.release(self.version)  # fails, harmlessly, when another holder has taken it over
            self.version = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lease_holder(raw: bytes) -> tuple[Holder | None, float]:
    """Who holds a lease and until when, from its bytes (None, 0: unreadable, so stale)."""
    try:
        current = json.loads(raw)
        return Holder(current["host"], int(current["pid"]), current["run_id"]), float(current["expires_ts"])
    except (ValueError, KeyError, TypeError):
        return None, 0.0


def live_lease(store: Store, key: str) -> tuple[Holder, float] | None:
    """The holder of the lease `key` and its expiry, while it is held (None when free, released or stale)."""
    raw, _ = Cell(store, key).read()
    if raw is None:
        return None
    holder, expires = lease_holder(raw)
    return None if holder is None or expires < time.time() else (holder, expires)


def lease_keys(store: Store) -> list[str]:
    """The key of every lease cell in the store (held, free or stale), sorted."""
    return sorted({info.key.rsplit("/", 1)[0] for info in store.list(layout.LOCKS_PREFIX) if info.key.count("/") >= 2})


def held_leases(store: Store) -> dict[str, tuple[Holder, float]]:
    """Every lease held right now: its key, holder and expiry (free, released and stale ones left out)."""
    return {key: held for key in lease_keys(store) if (held := live_lease(store, key)) is not None}


def gone_because(holder: Holder | None, expires: float, now: float, grace_s: float = 0.0) -> str | None:
    """Why the holder of a lease or claims counts as gone (None while it may still live): unreadable, its
    process gone from this host, or expired more than `grace_s` ago (the only test for another host)."""
    if holder is None:
        return "unreadable"
    if holder.gone():
        return f"its process is gone from {holder.host}"
    if expires + grace_s < now:
        return f"expired at {iso_at(expires)}"
    return None
