"""The quarantine command: the ledger's damaged records (and intents lines), and an operator's acceptance of
their loss."""

from __future__ import annotations

from content_pipeline.errors import BadInputError
from content_pipeline.ledger.inflight import read_intents
from content_pipeline.ledger.quarantine import Damaged, accept_loss, damaged_intents, damaged_records
from content_pipeline.ledger.scan import stream_ledger
from content_pipeline.store import Store
from content_pipeline.views.consolidate import consolidate


def damaged(store: Store) -> list[Damaged]:
    """Every damaged ledger record and intents line (one read of the whole ledger; nothing is written)."""
    return damaged_records(store, stream_ledger(store, lambda _: None)) + damaged_intents(store, read_intents(store))


def accept(store: Store, which: str) -> list[Damaged]:
    """Accept the loss of the damaged records `which` names (a `<segment>: line N`, a quarantine key, or
    "all"), then consolidate, so their slugs are released and a run generates them again."""
    found = damaged(store)
    chosen = accept_loss(store, found, which)
    if not chosen:
        pending = [d.where for d in found if not d.accepted]
        listed = f"damaged and not accepted: {', '.join(pending)}" if pending else "no damaged record awaits it"
        raise BadInputError(f"--accept-loss {which!r} names no damaged record ({listed})")
    consolidate(store)
    return chosen
