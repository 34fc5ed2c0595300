"""Read a catalogue (JSONL, CSV or Parquet, by path or URL) and validate it row by row."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from content_pipeline.errors import CatalogueRefusedError
from content_pipeline.intake.source import raw_rows

SLUG = re.compile(r"^[a-z0-9-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_LEN = {"title": 300, "category": 100, "description": 4000, "feature": 500}
MAX_FEATURES = 30


class Item(BaseModel):
    """One valid catalogue item: the fields the content is written from."""

    model_config = ConfigDict(frozen=True)

    slug: str
    title: str
    category: str
    price: float
    features: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # the post's tags when it is published
    promo: bool = False
    description: str = ""


@dataclass(frozen=True)
class InvalidRow:
    """A catalogue row that was skipped: where it is and why."""

    row: int
    slug: str | None
    reason: str

    def line(self, source: str) -> str:
        who = f" (slug {self.slug!r})" if self.slug else ""
        return f"{source}: row {self.row}{who}: {self.reason}"


@dataclass
class Tally:
    """What a scan of a catalogue read: rows, valid items, the invalid rows, and whether it read them all."""

    source: str
    rows: int = 0
    valid: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)
    complete: bool = False

    def check(self, max_invalid_share: float) -> None:
        """CatalogueRefusedError when a run must not go on with this catalogue: almost always a wrong path
        or a broken export."""
        if (refusal := self.refusal(max_invalid_share)) is not None:
            raise CatalogueRefusedError(refusal)

    def refusal(self, max_invalid_share: float) -> str | None:
        """Why a run must not go on: the catalogue is empty, has no valid row, or more than
        `max_invalid_share` of the rows read are invalid; None when it may."""
        read = "" if self.complete else " read so far"
        counts = f"{self.rows} row(s){read}, {self.valid} valid, {len(self.invalid)} invalid"
        if not self.rows and self.complete:
            return f"catalogue {self.source} is empty: no rows (is it the right file?)"
        if not self.valid and self.complete:
            return f"catalogue {self.source} has no valid row: {counts}"
        if self.rows and len(self.invalid) / self.rows > max_invalid_share:
            return (
                f"catalogue {self.source}: {len(self.invalid) / self.rows:.0%} of the rows are invalid ({counts}), "
                f"more than MAX_INVALID_ROWS_SHARE={max_invalid_share:g}"
            )
        return None


@dataclass
class Catalogue:
    """The valid items of a catalogue and the rows that were not."""

    source: str
    items: list[Item] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.items) + len(self.invalid)


class RowError(Exception):
    pass


def _text(row: dict[str, Any], name: str, *, required: bool, coerce: bool) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowError(f"missing {name}")
        return ""
    if not isinstance(value, str):
        if coerce and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise RowError(f"wrong type for {name}: expected text, got {type(value).__name__}")
    if "\ufffd" in value:
        raise RowError(f"undecodable text in {name}")
    if _CONTROL.search(value):
        raise RowError(f"control characters in {name}")
    if len(value) > MAX_LEN[name]:
        raise RowError(f"oversized {name}: {len(value)} characters (max {MAX_LEN[name]})")
    return value.strip()


def _price(row: dict[str, Any], coerce: bool) -> float:
    value = row.get("price")
    if value is None or value == "":
        raise RowError("missing price")
    if isinstance(value, bool):
        raise RowError("wrong type for price: expected a number, got bool")
    if isinstance(value, str):
        if not coerce:
            raise RowError(f"wrong type for price: expected a number, got text {value[:40]!r}")
        try:
            value = float(value)
        except ValueError:
            raise RowError(f"wrong type for price: {value[:40]!r} is not a number") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise RowError(f"invalid price {value!r}: expected a finite number >= 0")
    return float(value)


def _texts(row: dict[str, Any], name: str, coerce: bool) -> tuple[str, ...]:
    """A list-of-text field (features, tags): a JSON list, or in CSV text separated by `|`."""
    value = row.get(name)
    if value is None or value == "":
        return ()
    if isinstance(value, str) and coerce:
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                raise RowError(f"malformed {name}: not a JSON list") from None
        else:
            value = [part for part in stripped.split("|")]
    if hasattr(value, "to_list"):
        value = value.to_list()
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise RowError(f"wrong type for {name}: expected a list of text")
    if len(value) > MAX_FEATURES:
        raise RowError(f"oversized {name}: {len(value)} entries (max {MAX_FEATURES})")
    out = []
    for text in value:
        if len(text) > MAX_LEN["feature"]:
            raise RowError(f"oversized {name.rstrip('s')}: {len(text)} characters (max {MAX_LEN['feature']})")
        if "\ufffd" in text or _CONTROL.search(text):
            raise RowError(f"undecodable text in {name}")
        if text.strip():
            out.append(text.strip())
    return tuple(out)


def _promo(row: dict[str, Any], coerce: bool) -> bool:
    value = row.get("promo")
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if (
        coerce
        and isinstance(value, str)
        and value.strip().lower() in ("true", "1", "yes", "y", "false", "0", "no", "n")
    ):
        return value.strip().lower() in ("true", "1", "yes", "y")
    raise RowError(f"wrong type for promo: expected true/false, got {str(value)[:20]!r}")


def validate_row(row: dict[str, Any], *, coerce: bool = False) -> Item:
    """The row as an Item, or RowError naming the first problem. `coerce` parses text (CSV)."""
    slug = row.get("slug")
    if slug is None or slug == "":
        raise RowError("missing slug")
    if not isinstance(slug, str):
        raise RowError(f"wrong type for slug: expected text, got {type(slug).__name__}")
    if not SLUG.match(slug):
        shown = slug if len(slug) <= 40 else slug[:40] + "..."
        raise RowError(f"malformed slug {shown!r}: use 1-128 characters of [a-z0-9-]")
    return Item(
        slug=slug,
        title=_text(row, "title", required=True, coerce=coerce),
        category=_text(row, "category", required=True, coerce=coerce),
        price=_price(row, coerce),
        features=_texts(row, "features", coerce),
        tags=_texts(row, "tags", coerce),
        promo=_promo(row, coerce),
        description=_text(row, "description", required=False, coerce=coerce),
    )


def scan_catalogue(source: str, tally: Tally, s3_options: dict[str, str | None] | None = None) -> Iterator[Item]:
    """The valid items of `source` in order, as the caller asks for them; every row read is counted in
    `tally` and an invalid one (with row and reason, a repeated slug too) kept there. A caller that stops
    early reads no further; `tally.complete` tells whether every row was read."""
    seen: dict[str, int] = {}
    for number, raw, coerce in raw_rows(source, s3_options):
        tally.rows += 1
        if isinstance(raw, str):
            tally.invalid.append(InvalidRow(number, None, raw))
            continue
        slug = raw.get("slug") if isinstance(raw.get("slug"), str) else None
        try:
            item = validate_row(raw, coerce=coerce)
        except RowError as exc:
            tally.invalid.append(InvalidRow(number, slug if slug and SLUG.match(slug) else None, str(exc)))
            continue
        if item.slug in seen:
            tally.invalid.append(InvalidRow(number, item.slug, f"duplicate slug (first at row {seen[item.slug]})"))
            continue
        seen[item.slug] = number
        tally.valid += 1
        yield item
    tally.complete = True


def load_catalogue(source: str, s3_options: dict[str, str | None] | None = None) -> Catalogue:
    """Every valid item of `source` (a path, file://, http(s):// or s3:// URL) in memory; invalid rows are
    reported with row and reason, and skipped. Big catalogues: `scan_catalogue`."""
    tally = Tally(source)
    items = list(scan_catalogue(source, tally, s3_options))
    return Catalogue(source=source, items=items, invalid=tally.invalid)
