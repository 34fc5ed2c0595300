"""The benchmarks' provider: `content-pipeline fake-llm serve` in a process of its own, and what it saw."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def fake_provider(latency_ms: float, jitter: float = 0.0, rpm: int = 0) -> Iterator[str]:
    """The fake provider in its own process (so it does not share the client's GIL); yields its base URL."""
    cmd = [sys.executable, "-m", "cli.main", "fake-llm", "serve", "--port", "0", "--seed", "1"]
    cmd += ["--latency-ms", str(latency_ms), "--jitter", str(jitter), "--rpm", str(rpm)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        yield first.split("API at ", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(10)


def provider_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=10) as resp:
        return dict(json.loads(resp.read()))
