"""Recovery: the rescue files a run left when its store would not take its outcomes, imported into the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from content_pipeline.errors import StoreError
from content_pipeline.ledger.checksum import check
from content_pipeline.ledger.rescue import SUFFIX, store_id
from content_pipeline.ledger.scan import scan_ledger
from content_pipeline.store import Store, layout


@dataclass
class Imported:
    """What importing the rescue files found: records appended, files removed, lines that were damaged."""

    records: int = 0
    files: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)


def _run_and_id(line: bytes) -> tuple[str, str] | None:
    try:
        record = json.loads(line)
        return str(record["run_id"]), str(record["id"])
    except (ValueError, KeyError, TypeError):
        return None


def rescue_files(store: Store, folder: str) -> list[Path]:
    """This store's rescue files waiting in `folder`, oldest name first."""
    base = Path(folder)
    return sorted(base.glob(f"{store_id(store)}-*{SUFFIX}")) if base.is_dir() else []


def import_rescued(store: Store, folder: str, writer: str) -> Imported:
    """Append the records of this store's rescue files to the ledger, each to a segment of its own run
    named for `writer` (one durable append per run and file), then remove each file. A record the ledger
    already holds (an append that did land) is not appended twice; a damaged line is kept in a `.damaged`
    file beside it, and named."""
    found = Imported()
    files = rescue_files(store, folder)
    if not files:
        return found
    recorded = set(scan_ledger(store).frame["id"].to_list())
    try:
        for path in files:
            by_run: dict[str, list[bytes]] = {}
            bad: list[bytes] = []
            for line in path.read_bytes().split(b"\n"):
                ident = _run_and_id(line) if line.strip() and check(line) is None else None
                if ident is None:
                    bad += [line] if line.strip() else []
                elif ident[1] not in recorded:
                    by_run.setdefault(ident[0], []).append(line + b"\n")
                    recorded.add(ident[1])
            for run_id, lines in by_run.items():
                appender = store.appender(layout.ledger_segment(run_id, writer))
                try:
                    appender.append(b"".join(lines))
                finally:
                    appender.close()
                found.records += len(lines)
            if bad:
                kept = path.with_name(path.name + ".damaged")
                kept.write_bytes(b"".join(line + b"\n" for line in bad))
                found.damaged.append(f"{path}: {len(bad)} line(s) fail their checksum, kept in {kept}")
            path.unlink()
            found.files.append(str(path))
    except OSError as exc:
        raise StoreError(f"cannot import the rescue files in {folder}: {exc.strerror}") from exc
    return found
