"""The halt switch lives in the store, so every process sees it; halting twice keeps the last reason,
resuming lifts it, and a damaged switch counts as halted."""

from __future__ import annotations

import pytest

from content_pipeline.errors import StoreError
from content_pipeline.publish.halt import halt, halted, resume
from content_pipeline.store import Store, open_store


def test_halt_and_resume_are_seen_by_every_reader_of_the_store(store: Store) -> None:
    other = open_store(store.url)  # another process's view of the same store
    assert halted(other) is None and not resume(store)
    halt(store, "incident 42: wrong prices", "ops@example.com")
    seen = halted(other)
    assert seen is not None and seen.startswith("incident 42: wrong prices (halted ") and "by ops@example.com" in seen
    halt(other, "still investigating", "lead@example.com")
    assert halted(store).startswith("still investigating")
    assert resume(other) and halted(store) is None
    with pytest.raises(StoreError, match="give a --reason"):
        halt(store, "  ", "ops@example.com")


def test_a_damaged_halt_switch_counts_as_halted(store: Store) -> None:
    from content_pipeline.publish.halt import _cell

    cell = _cell(store)
    assert cell.swap(b"{not json", cell.read()[1])
    assert "is damaged: treated as halted" in halted(store)
