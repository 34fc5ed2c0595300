"""Changed items: those whose input hash (template, model, fields) is not what their success was generated from;
and those changed back to inputs an earlier success was generated from, restored from it at no cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from content_pipeline.configs import PricingConfig
from content_pipeline.errors import StoreError
from content_pipeline.generation.prompts import input_hash, legacy_input_hash
from content_pipeline.generation.templates import TemplateSet, active_templates
from content_pipeline.intake.catalogue import Item
from content_pipeline.ledger.checksum import check
from content_pipeline.ledger.jsonl import iter_pieces
from content_pipeline.ledger.records import OutcomeRecord, new_record_id
from content_pipeline.ledger.scan import ledger_segments
from content_pipeline.ledger.writer import writer_name
from content_pipeline.store import Store, layout
from content_pipeline.views.snapshot import read_inputs


@dataclass
class Known:
    """What items are compared with, read from the store once: master's input hashes, the superseded view
    and the active templates (read when first needed)."""

    hashes: pl.DataFrame
    superseded: dict[str, Any]
    store: Store
    _templates: TemplateSet | None = None

    @classmethod
    def read(cls, store: Store) -> Known:
        hashes, superseded = read_inputs(store)
        return cls(hashes, superseded, store)

    def templates(self) -> TemplateSet:
        if self._templates is None:
            self._templates = active_templates(self.store)
        return self._templates


def _current(
    store: Store, settings: PricingConfig, items: list[Item], known: Known | None = None
) -> tuple[dict[str, tuple[str, str]], dict[str, Any]]:
    """For each of `items` master holds a success for: (its success's input hash, its input hash now); and
    the superseded view."""
    known = known or Known.read(store)
    wanted = [item.slug for item in items]
    recorded = dict(known.hashes.filter(pl.col("slug").is_in(wanted)).iter_rows()) if wanted else {}
    found = {}
    for item in items:
        old = recorded.get(item.slug)
        if old is None:
            continue
        template = known.templates().for_slug(item.slug)
        now = input_hash(item, template, settings.model)
        found[item.slug] = (old, now if legacy_input_hash(item, template) != old else old)
    return found, known.superseded


def changed_slugs(store: Store, settings: PricingConfig, items: list[Item], known: Known | None = None) -> set[str]:
    """The slugs among `items` that master holds a success for, generated from other inputs than the item's
    now: another template or version, another MODEL, or changed fields. An item whose current inputs are
    those of its success (or of a reject for good after it) is not among them: it is never paid for again.
    Records written before the hash covered the model compare template and fields only. `known`: what was
    read of the store already (many calls, one read)."""
    found, superseded = _current(store, settings, items, known)
    rejected = superseded.get("rejected", {})
    return {slug for slug, (old, now) in found.items() if now != old and now != rejected.get(slug)}


def restore_earlier(store: Store, settings: PricingConfig, run_id: str, items: list[Item]) -> list[OutcomeRecord]:
    """The changed items among `items` whose inputs now are those of an earlier success: a new record of that
    success's content for each (no call, $0, `restored_from` naming it), appended to the run's ledger, so
    master holds that version again. Returns them (the rest are generated)."""
    found, superseded = _current(store, settings, items)
    earlier = superseded.get("earlier", {})
    wanted = {
        slug: earlier[slug][now] for slug, (old, now) in found.items() if now != old and now in earlier.get(slug, {})
    }
    if not wanted or store.read_only:
        return []
    originals = _read(store, {tuple(where) for where in wanted.values()})
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    restored = []
    for _, record_id in sorted(wanted.values()):
        old = originals.get(record_id)
        if old is None:  # the segment went away or the line is damaged: the item is generated instead
            continue
        update = {"id": new_record_id(), "run_id": run_id, "cost_usd": 0.0, "tokens_in": 0, "tokens_out": 0}
        update |= {"tokens_cached": 0, "calls": [], "run_budget_usd": settings.budget_usd, "restored_from": old.id}
        restored.append(old.model_copy(update={**update, "started_at": stamp, "finished_at": stamp}))
    if restored:
        appender = store.appender(layout.ledger_segment(run_id, f"{writer_name()}-restored"))
        try:
            appender.append(b"".join(record.line() for record in restored))
        finally:
            appender.close()
    return restored


def _read(store: Store, wanted: set[tuple[str, str]]) -> dict[str, OutcomeRecord]:
    """The records `wanted` names (segment, record id), each read from its segment and checked."""
    segments = {segment for segment, _ in wanted}
    ids = {record_id for _, record_id in wanted}
    found: dict[str, OutcomeRecord] = {}
    for info in ledger_segments(store):
        if info.key not in segments:
            continue
        try:
            for piece in iter_pieces(store, [(info.key, info.size)]):
                for line in piece.data.splitlines():
                    if line.strip() and check(line) is None:
                        record = OutcomeRecord.model_validate_json(line)
                        if record.id in ids:
                            found[record.id] = record
        except (StoreError, ValueError):
            continue
    return found
