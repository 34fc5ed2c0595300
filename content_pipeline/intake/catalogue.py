"""Read a catalogue (JSONL, CSV or Parquet, by path or URL) and validate it row by row."""

from __future__ import annotations

import io
import json
import math
import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import polars as pl
from pydantic import BaseModel, ConfigDict

from content_pipeline.errors import BadInputError

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


def _read_source(source: str, s3_options: dict[str, str | None] | None) -> bytes:
    parsed = urlparse(source)
    if parsed.scheme == "s3":
        from content_pipeline.store.s3 import read_s3_url

        try:
            return read_s3_url(source, s3_options)
        except BadInputError as exc:
            raise BadInputError(f"catalogue {exc}") from None
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(source, timeout=30) as resp:
                return resp.read()
        except OSError as exc:
            raise BadInputError(f"catalogue {source}: cannot fetch ({exc})") from None
    path = Path(parsed.path if parsed.scheme == "file" else source)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"catalogue {source}: file not found") from None
    except OSError as exc:
        raise BadInputError(f"catalogue {source}: cannot read ({exc.strerror})") from None


def _raw_rows(source: str, data: bytes) -> list[tuple[int, dict[str, Any] | str, bool]]:
    """(row number, raw row or the reason it is unreadable, coerce) for every row."""
    suffix = Path(urlparse(source).path).suffix.lower()
    rows: list[tuple[int, dict[str, Any] | str, bool]] = []
    if suffix in (".jsonl", ".ndjson", ".json"):
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                rows.append((number, f"undecodable text: invalid UTF-8 at byte {exc.start}", False))
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                rows.append((number, f"malformed JSON: {exc.msg} at column {exc.colno}", False))
                continue
            rows.append((number, obj if isinstance(obj, dict) else "malformed row: not a JSON object", False))
        return rows
    try:
        if suffix == ".csv":
            frame = pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8-lossy")
            first, coerce = 2, True
        elif suffix == ".parquet":
            frame = pl.read_parquet(io.BytesIO(data))
            first, coerce = 1, False
        else:
            raise BadInputError(
                f"catalogue {source}: unknown format {suffix or '(none)'!r}; use .jsonl, .csv or .parquet"
            )
    except pl.exceptions.PolarsError as exc:
        raise BadInputError(f"catalogue {source}: cannot parse: {str(exc).splitlines()[0]}") from None
    for number, row in enumerate(frame.iter_rows(named=True), start=first):
        rows.append((number, row, coerce))
    return rows


def load_catalogue(source: str, s3_options: dict[str, str | None] | None = None) -> Catalogue:
    """Every valid item of `source` (a path, file://, http(s):// or s3:// URL); invalid rows are reported
    with row and reason, and skipped."""
    catalogue = Catalogue(source=source)
    seen: dict[str, int] = {}
    for number, raw, coerce in _raw_rows(source, _read_source(source, s3_options)):
        if isinstance(raw, str):
            catalogue.invalid.append(InvalidRow(number, None, raw))
            continue
        slug = raw.get("slug") if isinstance(raw.get("slug"), str) else None
        try:
            item = validate_row(raw, coerce=coerce)
        except RowError as exc:
            catalogue.invalid.append(InvalidRow(number, slug if slug and SLUG.match(slug) else None, str(exc)))
            continue
        if item.slug in seen:
            catalogue.invalid.append(InvalidRow(number, item.slug, f"duplicate slug (first at row {seen[item.slug]})"))
            continue
        seen[item.slug] = number
        catalogue.items.append(item)
    return catalogue
