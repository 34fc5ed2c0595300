"""Damaged ledger records kept aside: a copy in quarantine, their slugs held (never generated again) until
an operator accepts the loss."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from content_pipeline.ledger.inflight import IntentScan
from content_pipeline.ledger.scan import LedgerScan
from content_pipeline.store import Store, layout

_SLUG = re.compile(rb'"slug"\s*:\s*"([A-Za-z0-9._-]{1,200})"')


@dataclass(frozen=True)
class Damaged:
    """One damaged ledger line: where it is, what is wrong, its slug when readable, where its copy is kept,
    and the operator's acceptance of the loss when given."""

    where: str
    what: str
    slug: str | None
    kept: str
    raw: bytes
    accepted: dict[str, Any] | None = None
    intent: bool = False  # a line of an intents log, not an outcome record

    def line(self) -> str:
        """One line for the audit and the `quarantine` command."""
        accept = f"`content-pipeline quarantine --accept-loss '{self.where}'`"
        head = f"{self.where} {self.what}; kept in {self.kept}"
        if self.intent:
            if self.accepted:
                return f"{head}; an intent whose call cannot be booked: loss accepted at {self.accepted['at']}"
            return f"{head}; an intent whose call cannot be booked at its worst case: check the provider's invoice, then {accept}"
        if self.accepted:
            settled = self.accepted.get("note") or "loss accepted"
            return f"{head}; {f'slug {self.slug}' if self.slug else 'no slug readable'}: {settled} at {self.accepted['at']}"
        if not self.slug:
            return f"{head}; no slug readable, so nothing is held; {accept} clears it"
        return f"{head}; slug {self.slug} held (not generated again) until {accept} (or a restore from a backup)"


def slug_of(raw: bytes) -> str | None:
    found = _SLUG.search(raw)
    return found.group(1).decode() if found else None


def _accepted_key(where: str) -> str:
    return f"{layout.ACCEPTED_LOSSES}{hashlib.sha256(where.encode()).hexdigest()[:32]}.json"


def accepted_losses(store: Store) -> dict[str, dict[str, Any]]:
    """where -> the operator's acceptance, for every damaged record whose loss was accepted."""
    out: dict[str, dict[str, Any]] = {}
    for info in store.list(layout.ACCEPTED_LOSSES):
        try:
            entry = json.loads(store.get(info.key) or b"")
            out[str(entry["where"])] = entry
        except (ValueError, KeyError, TypeError):
            continue  # unreadable: the loss counts as not accepted, so its slug stays held
    return out


def damaged_records(store: Store, scan: LedgerScan) -> list[Damaged]:
    """The damaged lines a scan found, with their slugs, quarantine keys and acceptances."""
    accepted = accepted_losses(store)
    out = []
    for bad in scan.damaged:
        key = scan.segments[bad.seg][0]
        where = bad.where(key)
        kept = layout.damaged_record(key, bad.line)
        out.append(Damaged(where, bad.what, slug_of(bad.raw), kept, bad.raw, accepted.get(where)))
    return out


def damaged_intents(store: Store, intents: IntentScan) -> list[Damaged]:
    """The damaged lines of the intents logs, as damaged records that hold no slug (their calls cannot be
    booked, so the audit names them until an operator accepts it)."""
    accepted = accepted_losses(store) if intents.bad else {}
    out = []
    for bad in intents.bad:
        key = intents.listing[bad.seg][0]
        where = bad.where(key)
        kept = layout.damaged_record(key, bad.line)
        out.append(Damaged(where, bad.what, None, kept, bad.raw, accepted.get(where), intent=True))
    return out


def keep_aside(store: Store, damaged: list[Damaged]) -> None:
    """A copy of each damaged line in quarantine (written once: the ledger line itself is never touched)."""
    for record in damaged:
        store.put_if_absent(record.kept, record.raw)


def held_slugs(store: Store, damaged: Iterable[Damaged] = ()) -> dict[str, str]:
    """slug -> where, for every damaged record kept in quarantine (and those in `damaged`) whose loss was
    not accepted: the slugs no run may generate again without an operator's word."""
    accepted = accepted_losses(store)
    held: dict[str, str] = {}
    for info in store.list(layout.QUARANTINE_PREFIX):
        where = layout.damaged_where(info.key)
        if where is not None and where not in accepted and (slug := slug_of(store.get(info.key) or b"")):
            held.setdefault(slug, where)
    for record in damaged:
        if record.slug and record.where not in accepted:
            held.setdefault(record.slug, record.where)
    return dict(sorted(held.items()))


def accept_loss(store: Store, damaged: list[Damaged], which: str, note: str | None = None) -> list[Damaged]:
    """Record the operator's acceptance of the loss of the damaged records `which` names (a `where`, a
    quarantine key, or "all"); their slugs are no longer held, so a run generates them again (unless,
    as `note` says of a restore's, the record was recovered)."""
    chosen = [d for d in damaged if not d.accepted and which in ("all", d.where, d.kept)]
    at = datetime.now(UTC).isoformat(timespec="seconds")
    for record in chosen:
        entry = {"where": record.where, "slug": record.slug, "what": record.what, "at": at}
        if note:
            entry["note"] = note
        store.put(_accepted_key(record.where), (json.dumps(entry, sort_keys=True) + "\n").encode())
    return chosen
