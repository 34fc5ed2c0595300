"""Scenario 7, a big catalogue: a 200 MB catalogue (650,000 rows) and a run with a small LIMIT, which reads
only the rows it needs; the first call's delay, peak memory and the store's growth per run, and a full
inventory of it (each in a process of its own)."""

from __future__ import annotations

import random
import resource
import time
from pathlib import Path
from typing import Any

from bench.workloads import CATEGORIES, CLI, FEATURES, _timed, cli_env

ROWS = 650_000
BLURB = "Built for daily use, easy to clean and made to last; it packs flat and ships in recycled card. "


def write_big_catalogue(path: str, rows: int = ROWS) -> dict[str, Any]:
    """`rows` valid items of about 300 bytes each, as JSONL (200 MB at 650,000 rows)."""
    import json

    file = Path(path)
    rng = random.Random(rows)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w") as out:
        for i in range(rows):
            row = {
                "slug": f"big-item-{i:07d}",
                "title": f"Catalogue Widget {i} {rng.choice(['Pro', 'Lite', 'Max', 'Mini'])}",
                "category": CATEGORIES[i % len(CATEGORIES)],
                "price": round(5 + rng.random() * 200, 2),
                "features": [f"{rng.randint(2, 90)} {f} model {i}" for f in rng.sample(FEATURES, 3)],
                "description": BLURB[: 40 + i % 60],
            }
            out.write(json.dumps(row) + "\n")
    return {"path": path, "rows": rows, "mb": round(file.stat().st_size / 2**20, 1)}


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def small_limit_runs(work: Path, catalogue: str, limits: list[int]) -> dict[str, Any]:
    """`go-live --limit N` for each of `limits` in turn on one store, each in a fresh process against the
    fake provider: seconds from the command's start to its first call, the store's growth per run, and the
    largest peak memory of the runs."""
    from bench.provider import fake_provider, provider_stats

    store = work / "store"
    runs = []
    for n, limit in enumerate(limits):
        with fake_provider(latency_ms=50) as url:
            env = cli_env(work, STORE_URL=str(store), CATALOGUE=catalogue, OPENAI_API_KEY="sk-bench")
            env.update(OPENAI_BASE_URL=url, CONCURRENCY="16")
            before = _size(store) if store.exists() else 0
            cmd = [*CLI, "go-live", "--limit", str(limit), "--budget-usd", "100", "--run-id", f"big-{n}"]
            started, seconds, done = _timed(cmd, env)
            assert f"generated: {limit} ({limit} successes" in done.stdout, done.stdout[-2000:]
            first = float(provider_stats(url)["first_request_at"]) - started
        runs.append({"limit": limit, "first_call_s": round(first, 2), "seconds": round(seconds, 2)})
        runs[-1]["store_growth_kb"] = round((_size(store) - before) / 1024, 1)
    return {"runs": runs, "child_peak_rss_mb": _peak_mb()}


def full_inventory(work: Path, catalogue: str) -> dict[str, Any]:
    """`content-pipeline inventory` over every row, in a fresh process: seconds and peak memory."""
    env = cli_env(work, STORE_URL=str(work / "store"), CATALOGUE=catalogue)
    start = time.perf_counter()
    _, seconds, done = _timed([*CLI, "inventory", "--run-id", "big-inventory"], env)
    assert "item(s) need content" in done.stdout, done.stdout[-2000:]
    return {
        "seconds": round(seconds, 2),
        "wall_s": round(time.perf_counter() - start, 2),
        "child_peak_rss_mb": _peak_mb(),
    }
