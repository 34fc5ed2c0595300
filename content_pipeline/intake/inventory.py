"""Inventory: which catalogue items need content (not done, not permanently rejected, or changed since their
success; in scope), read as a stream: a run reads rows until it has found what it can claim."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice

from content_pipeline.claims.pending import pending_slugs
from content_pipeline.intake.catalogue import Item, Tally, scan_catalogue
from content_pipeline.intake.items import item_line
from content_pipeline.store import Store, layout
from content_pipeline.store.base import ObjectWriter
from content_pipeline.views.checkpoint import Checkpoint, decided
from content_pipeline.views.consolidate import current_checkpoint

_CHUNK = 2_000  # valid items looked at together (what changed among them is read in one go)


@dataclass
class Inventory:
    """What the rows read of the catalogue hold, what of them needs content, and what the views said of the
    rest. A run that wanted N items stopped reading once it found N (`catalogue.complete` is then False)."""

    catalogue: Tally
    needs: list[Item]  # those kept (all of them unless the inventory wrote them to the store only)
    needing: int  # how many of the rows read need content
    repaired: list[str] = field(default_factory=list)  # damaged views found and rebuilt from the ledger
    changed: frozenset[str] = frozenset()  # done items whose inputs changed since their success


@dataclass(frozen=True)
class Needs:
    """Which items need content, from the views: the decided set (done, rejected for good, held), the items
    pending in a batch, and those another live run has claimed (`taken`)."""

    checkpoint: Checkpoint
    scope: str
    pending: frozenset[str] = frozenset()
    taken: frozenset[str] = frozenset()
    final: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, checkpoint: Checkpoint, scope: str, pending: Collection[str] = (), taken: Collection[str] = ()
    ) -> Needs:
        final = frozenset(decided(checkpoint)) | frozenset(pending) | frozenset(taken)
        return cls(checkpoint, scope, frozenset(pending), frozenset(taken), final)

    def among(self, items: Iterable[Item], changed: Collection[str] = ()) -> list[Item]:
        """The items in scope no run has decided for good, and the `changed` ones (done, but generated from
        other inputs than they have now); scope "changed": those alone. Items pending in a batch not
        collected yet (collect settles them), held, or claimed by another live run are left out."""
        held, out = self.checkpoint.get("held", {}), self.pending | self.taken
        if self.scope == "changed":
            return [i for i in items if i.slug in changed and i.slug not in out and i.slug not in held]
        again = set(changed) - set(held) - out
        return [i for i in items if (i.slug not in self.final or i.slug in again) and (self.scope == "all" or i.promo)]


def take_inventory(
    store: Store,
    catalogue_source: str,
    scope: str,
    run_id: str,
    s3_options: dict[str, str | None] | None = None,
    changed: Callable[[list[Item]], Collection[str]] | None = None,
    want: int | None = None,
    taken: Collection[str] = (),
    keep: bool = True,
) -> Inventory:
    """Read and validate the catalogue as a stream, and write the run's invalid-row report. `changed`: which
    of the done items changed since their success (they need content again). With `want`, reading stops once
    `want` items needing content (and not `taken` by another run) are found, and only they are kept: a run
    reads what it claims, not the catalogue. Without it, every row is read and the needs-content list is
    written to the store as it is found (kept in memory too unless not `keep`)."""
    tally = Tally(catalogue_source)
    scan = scan_catalogue(catalogue_source, tally, s3_options)
    items = chain(list(islice(scan, 1)), scan)  # a catalogue that cannot be read fails before the views are
    repaired: list[str] = []
    checkpoint = current_checkpoint(store, repaired)
    done = checkpoint.get("done", {})
    rule = Needs.of(checkpoint, scope, pending_slugs(store), taken)
    found: list[Item] = []
    needing, again = 0, set()
    writer = None if want is not None or store.read_only else store.writer(layout.run_key(run_id, layout.NEEDS_CONTENT))
    try:
        for chunk in _chunks(items, want):
            chunk_again = changed([i for i in chunk if i.slug in done]) if changed else ()
            again.update(chunk_again)
            needed = rule.among(chunk, chunk_again)
            if want is not None:
                needed = needed[: want - needing]
            needing += len(needed)
            _keep(found, needed, writer, keep)
            if want is not None and needing >= want:
                break
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        scan.close()
    if not store.read_only:
        _write_invalid(store, run_id, tally)
    return Inventory(tally, found, needing, repaired, frozenset(again))


def _chunks(items: Iterator[Item], want: int | None) -> Iterator[list[Item]]:
    """The items in lists of _CHUNK; with `want`, `want` first, then twice as many each time, up to _CHUNK
    (a run that wants 10 reads little, one that reads past many done items reads in big steps)."""
    size = _CHUNK if want is None else min(_CHUNK, max(want, 1))
    while chunk := list(islice(items, size)):
        yield chunk
        size = min(_CHUNK, size * 2)


def _keep(found: list[Item], needed: list[Item], writer: ObjectWriter | None, keep: bool) -> None:
    if writer is not None and needed:
        writer.write(b"".join(item_line(item) for item in needed))
    if keep:
        found.extend(needed)


def _write_invalid(store: Store, run_id: str, tally: Tally) -> None:
    store.put(
        layout.run_key(run_id, layout.INVALID_ROWS),
        "".join(json.dumps({"row": r.row, "slug": r.slug, "reason": r.reason}) + "\n" for r in tally.invalid).encode(),
    )


def find_items(
    catalogue_source: str, slugs: Collection[str], s3_options: dict[str, str | None] | None = None
) -> list[Item]:
    """The catalogue's items among `slugs`, in catalogue order; reading stops once all of them are found."""
    wanted, found = set(slugs), []
    if not wanted:
        return []
    items = scan_catalogue(catalogue_source, Tally(catalogue_source), s3_options)
    try:
        for item in items:
            if item.slug in wanted:
                found.append(item)
                if len(found) == len(wanted):
                    break
    finally:
        items.close()
    return found


def count_needs(
    catalogue_source: str, rule: Needs, s3_options: dict[str, str | None] | None = None
) -> tuple[Tally, int, int]:
    """Over every row, streamed (for status and progress): the tally, how many items need content, and how
    many the rule's views have decided (or hold pending, or another run has claimed)."""
    tally, needing, settled = Tally(catalogue_source), 0, 0
    items = scan_catalogue(catalogue_source, tally, s3_options)
    for chunk in _chunks(items, None):
        needing += len(rule.among(chunk))
        settled += sum(1 for item in chunk if item.slug in rule.final)
    return tally, needing, settled
