"""Shared fixtures: stores and catalogues built per test, and one Prefect test server per session."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from content_pipeline.settings import Settings, load_settings
from content_pipeline.store import Store, open_store

for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "STORE_URL", "CATALOGUE", "RUN_ID", "EVIDENCE_ONLY"):
    os.environ.pop(name, None)  # the tests decide these; nothing leaks in from the shell


def make_item(n: int, **fields: Any) -> dict[str, Any]:
    """A valid catalogue row with distinct content."""
    row = {
        "slug": f"item-{n:04d}",
        "title": f"Sample Widget {n}",
        "category": ["Kitchen", "Outdoor", "Travel"][n % 3],
        "price": 10.0 + n,
        "features": [f"A {n + 2} cm steel frame", f"{n % 7 + 2} colour options", f"Rated for {n + 5} uses a day"],
        "promo": n % 4 == 0,
    }
    row.update(fields)
    return row


@pytest.fixture
def write_catalogue(tmp_path: Path) -> Callable[..., str]:
    """Write rows (dicts or raw bytes) as a JSONL catalogue; returns its path."""

    def write(rows: list[dict[str, Any] | bytes], name: str = "catalogue.jsonl") -> str:
        path = tmp_path / name
        path.write_bytes(b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows))
        return str(path)

    return write


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_dir: Path) -> Store:
    return open_store(str(store_dir))


@pytest.fixture
def make_settings(store_dir: Path, write_catalogue: Callable[..., str]) -> Callable[..., Settings]:
    """Settings on the test's store; a 20-item catalogue unless one is given."""

    def make(**overrides: Any) -> Settings:
        if "catalogue" not in overrides:
            overrides["catalogue"] = write_catalogue([make_item(n) for n in range(1, 21)], "default-catalogue.jsonl")
        return load_settings(store_url=str(store_dir), **overrides).with_run_id()

    return make


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root and its bytes (to show nothing stored was damaged)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".locks" not in p.parts
    }


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One Prefect test server for the whole session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())
