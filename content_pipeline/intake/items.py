"""Items as JSONL run files (needs-content, batch): written and read in one way."""

from __future__ import annotations

from content_pipeline.errors import BadInputError
from content_pipeline.intake.catalogue import Item
from content_pipeline.store import Store


def item_line(item: Item) -> bytes:
    """One item as a line of JSON."""
    return item.model_dump_json().encode() + b"\n"


def items_jsonl(items: list[Item]) -> bytes:
    """One item per line, as JSON."""
    return b"".join(item_line(item) for item in items)


def write_items(store: Store, key: str, items: list[Item]) -> None:
    store.put(key, items_jsonl(items))


def read_items(store: Store, key: str) -> list[Item] | None:
    """Items of a run file, or None when it does not exist; a damaged file is one clear line."""
    data = store.get(key)
    if data is None:
        return None
    try:
        return [Item.model_validate_json(line) for line in data.decode().splitlines() if line.strip()]
    except (ValueError, UnicodeDecodeError):
        raise BadInputError(f"{key} is damaged: run the stage that writes it again") from None
