"""A process frozen (SIGSTOP, as a paused VM would be) in the middle of creating cell versions on the local
store blocks no other process: create-if-absent takes no lock, so the next writer of the same key wins or
loses at once, and the frozen one, resumed, is told it lost. Real processes, stopped at random points."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from content_pipeline.store.local import LocalStore
from tests.support.helpers import until

pytestmark = [pytest.mark.slow]  # processes stopped and resumed

PAYLOAD = b"v" * 4096
WRITER = f"""
import sys
from content_pipeline.store.local import LocalStore
store = LocalStore(sys.argv[1])
i = 0
while True:
    store.put_if_absent(f"cells/c/{{i:08d}}", {PAYLOAD!r})
    i += 1
"""
ROUNDS = 8
BOUND_S = 20.0  # far above a create on any disk; a writer blocked on a frozen one waits forever


def _highest(root: Path) -> int:
    """The newest version created (-1 before the first; the writer's temp files start with a dot)."""
    folder = root / "cells" / "c"
    names = [p.name for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []
    return max((int(n) for n in names), default=-1)


def _create(store: LocalStore, key: str) -> bool | None:
    """Create `key` in a thread; None when it has not returned within the bound."""
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(store.put_if_absent(key, b"mine")), daemon=True)
    thread.start()
    thread.join(BOUND_S)
    return answer[0] if answer else None


def test_a_writer_frozen_mid_create_blocks_no_other_writer(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalStore(root)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stderr=subprocess.PIPE, text=True)
    won: list[str] = []
    try:
        until(lambda: _highest(root) >= 3, 60)
        for _ in range(ROUNDS):
            time.sleep(0.05)
            writer.send_signal(signal.SIGSTOP)
            time.sleep(0.05)  # let the stop land wherever the writer was
            for key in (f"cells/c/{_highest(root) + step:08d}" for step in (1, 2)):
                answer = _create(store, key)
                assert answer is not None, f"creating {key} waited over {BOUND_S} s on the frozen writer"
                if answer:
                    won.append(key)
            writer.send_signal(signal.SIGCONT)
        time.sleep(0.2)
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""  # resumed, told it lost
    finally:
        writer.kill()
        writer.wait()
    assert won  # the free keys ahead of the frozen writer were taken at once
    for key in won:
        assert store.get(key) == b"mine", key  # a winner's version is never overwritten by the resumed writer
    versions = [p for p in (root / "cells" / "c").iterdir() if not p.name.startswith(".")]
    assert all(p.read_bytes() in (PAYLOAD, b"mine") for p in versions)  # every version whole
