"""The work each benchmark measures, one function per form; each runs in its own process (see `__main__`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

FEATURES = ["steel frame", "colour options", "uses a day", "litre capacity", "hour battery", "year warranty"]
CATEGORIES = ["Kitchen", "Outdoor", "Travel", "Office", "Garden"]


def write_catalogue(path: Path, n: int) -> str:
    """n valid, distinct items (no near-copies), as JSONL."""
    rng = random.Random(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for i in range(n):
            feats = [f"{rng.randint(2, 90)} {f} model {i}" for f in rng.sample(FEATURES, 3)]
            row = {
                "slug": f"bench-item-{i:07d}",
                "title": f"Bench Widget {i} {rng.choice(['Pro', 'Lite', 'Max', 'Mini'])}",
                "category": CATEGORIES[i % len(CATEGORIES)],
                "price": round(5 + rng.random() * 200, 2),
                "features": feats,
                "promo": i % 5 == 0,
            }
            out.write(json.dumps(row) + "\n")
    return str(path)


BENCH_DAILY_BUDGET = "1000000"  # DAILY_BUDGET_USD of the bench's runs: each carries a $10,000 ceiling


def _env(work: Path, **extra: str) -> None:
    os.environ.update({"STORE_URL": str(work / "store"), **extra})
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect-home"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # a fresh PREFECT_HOME's temporary server creates its database first: Prefect's 20 s is short on a busy
    # two-core machine (a smoke run in `make test` timed out on it once)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("DAILY_BUDGET_USD", BENCH_DAILY_BUDGET)


def generate_stage(work: Path, url: str, items: int, concurrency: int) -> dict[str, Any]:
    """go-live's generate stage (Prefect flow, one task per chunk), after inventory, batch and preflight."""
    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    _env(work, CATALOGUE=catalogue, OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=url, CONCURRENCY=str(concurrency))
    from flows import pipeline

    params = {"limit": items, "budget_usd": 10_000.0, "run_id": "bench-generate"}
    for stage in (pipeline.inventory_flow, pipeline.batch_flow, pipeline.preflight_flow):
        state = stage(**params, return_state=True)
        assert state.is_completed(), state.message
    start = time.perf_counter()
    state = pipeline.generate_flow(**params, return_state=True)
    seconds = time.perf_counter() - start
    assert state.is_completed(), state.message
    span = _calls_span(os.environ["STORE_URL"], params["run_id"])
    return {"seconds": seconds, "items": items, "summary": state.message, "calls_span_s": span}


def core_generate_stage(work: Path, url: str, items: int, concurrency: int) -> dict[str, Any]:
    """The same generate stage on the CLI's direct path (the core, no Prefect), after the same stages:
    what `content-pipeline generate --run-id ID` does once the process is up."""
    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    _env(work, CATALOGUE=catalogue, OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=url, CONCURRENCY=str(concurrency))
    import content_pipeline.generation.chunk  # noqa: F401  (the SDK imported before the clock starts, as the flow form has it)
    from content_pipeline.run.commands import run_command
    from content_pipeline.run.reporter import PlainReporter
    from content_pipeline.settings import load_settings
    from content_pipeline.store import store_for

    settings = load_settings(limit=items, budget_usd=10_000.0, run_id="bench-core")
    store, reporter = store_for(settings), PlainReporter()
    for command in ("inventory", "batch", "preflight"):
        outcome = run_command(command, settings, store, reporter)
        assert outcome.ok, outcome.message
    appends = _count_appends()
    start = time.perf_counter()
    outcome = run_command("generate", settings, store, reporter)
    seconds = time.perf_counter() - start
    assert outcome.ok, outcome.message
    return {
        "seconds": seconds,
        "items": items,
        "summary": outcome.message,
        "calls_span_s": _calls_span(store.url, "bench-core"),
        "durable_appends": dict(appends),
    }


def early_429s(
    work: Path, items: int, concurrency: int, latency_ms: float, rpm: int, burst: float, slow_start: bool = True
) -> dict[str, Any]:
    """The 429s a short run meets from a provider whose bucket holds `burst` of a minute's allowance (3,000
    RPM at 0.01: 30 requests at once): the core's generate stage at `concurrency` against its own fake-llm
    process. `slow_start` False: every call at once, as before issue 18."""
    from bench.provider import provider_stats
    from content_pipeline.llm import slowstart

    slowstart.ENABLED = slow_start
    cmd = [sys.executable, "-m", "cli.main", "fake-llm", "serve", "--port", "0", "--seed", "1", "--jitter", "0.2"]
    cmd += ["--latency-ms", str(latency_ms), "--rpm", str(rpm), "--burst", str(burst)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split("API at ", 1)[1].split()[0]
        result = core_generate_stage(work, url, items, concurrency)
        stats = provider_stats(url)
    finally:
        proc.terminate()
        proc.wait(10)
    span = (stats["last_request_at"] or 0) - (stats["first_request_at"] or 0)
    return {
        "seconds": result["seconds"],
        "rate_limited": stats["by_outcome"].get("rate_limited", 0),
        "requests": stats["requests"],
        "peak_in_flight": stats["peak_in_flight"],
        "requests_span_s": span,
    }


def _count_appends() -> Counter[str]:
    """Counts every durable append from here on (write + fsync of a group of lines), of the intents logs
    and of the ledger, and the lines they carried: the bench's own instrument, wrapped around the store's
    local appender."""
    from content_pipeline.store import layout
    from content_pipeline.store.local import LocalAppender

    counts: Counter[str] = Counter()
    original = LocalAppender.append

    def counted(self: LocalAppender, data: bytes) -> None:
        path = str(self._path)
        logs = (layout.INTENTS_PREFIX, layout.LEDGER_PREFIX)
        log = next((prefix.rstrip("/") for prefix in logs if f"/{prefix}" in path), "telemetry")
        original(self, data)
        counts[f"{log}_appends"] += 1
        counts[f"{log}_lines"] += data.count(b"\n")

    LocalAppender.append = counted  # type: ignore[method-assign]
    return counts


def _calls_span(store_url: str, run_id: str) -> float:
    """Seconds from the first item's start to the last item's answer, from the run's ledger records (the
    part of the stage that is generation, without the Prefect flow run's start and end)."""
    from content_pipeline.ledger.scan import read_records
    from content_pipeline.store import open_store

    records = [r for r in read_records(open_store(store_url)) if r.run_id == run_id]
    first = min(datetime.fromisoformat(r.started_at) for r in records)
    last = max(datetime.fromisoformat(r.finished_at) for r in records)
    return (last - first).total_seconds()


def task_per_item(work: Path, url: str, items: int, concurrency: int) -> dict[str, Any]:
    """The same work written as one Prefect task per item (what a first Prefect version would do)."""
    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    _env(work, CATALOGUE=catalogue, OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=url, CONCURRENCY=str(concurrency))
    from prefect import flow, task
    from prefect.cache_policies import NONE
    from prefect.futures import wait
    from prefect.task_runners import ThreadPoolTaskRunner

    from content_pipeline.generation.chunk import run_chunk
    from content_pipeline.generation.context import GenerationContext, open_generation
    from content_pipeline.intake.catalogue import load_catalogue
    from content_pipeline.settings import load_settings
    from content_pipeline.store import store_for

    settings = load_settings(budget_usd=10_000.0, run_id="bench-per-item")
    store = store_for(settings)
    things = load_catalogue(catalogue).items

    shared: list[GenerationContext] = []  # the run's context, which the tasks share (not a task parameter)

    @task(name="generate-one", cache_policy=NONE)  # no cache key to compute and log 3,000 times
    def one(item: Any) -> int:
        return len(run_chunk(shared[0], [item], 1))

    @flow(name="per-item", task_runner=ThreadPoolTaskRunner(max_workers=concurrency))
    def per_item() -> None:
        shared.append(open_generation(store, settings, "bench-per-item", parallel=concurrency))
        wait([one.submit(item) for item in things])
        shared[0].close()

    @flow(name="warm-up")
    def warm_up() -> None:
        pass

    warm_up()  # start Prefect's API before the clock starts, as the generate stage's earlier stages do
    start = time.perf_counter()
    per_item()
    return {"seconds": time.perf_counter() - start, "items": items}


def bare_asyncio(work: Path, url: str, items: int, concurrency: int) -> dict[str, Any]:
    """A bare asyncio loop over the `openai` client: the same requests, no QA, no ledger, no Prefect."""
    from openai import AsyncOpenAI

    from content_pipeline.generation.content import RESPONSE_FORMAT
    from content_pipeline.generation.prompts import messages
    from content_pipeline.intake.catalogue import load_catalogue

    things = load_catalogue(write_catalogue(work / "catalogue.jsonl", items)).items

    async def main() -> None:
        client = AsyncOpenAI(api_key="sk-bench", base_url=url, max_retries=0)
        gate = asyncio.Semaphore(concurrency)

        async def one(item: Any) -> None:
            async with gate:
                await client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=messages(item),  # type: ignore[arg-type]
                    response_format=RESPONSE_FORMAT,  # type: ignore[arg-type]
                    max_completion_tokens=800,
                )

        await asyncio.gather(*(one(item) for item in things))
        await client.close()

    start = time.perf_counter()
    asyncio.run(main())
    return {"seconds": time.perf_counter() - start, "items": items}


def _record_json(i: int, run: str, status: str = "success") -> str:
    """A realistic record's JSON object, before its checksum is added."""
    return _record_line(i, run, status).rsplit(',"checksum":', 1)[0] + "}"


def _bench_id(run: str, slug: str, attempt: int) -> str:
    """A record id fixed by run and slug, so a template line's id can be replaced by another's."""
    return hashlib.sha256(f"{run}/{slug}/{attempt}".encode()).hexdigest()[:32]


def _record_line(i: int, run: str, status: str = "success") -> str:
    """One realistic ledger line (about 2 KB with content and sketch)."""
    from content_pipeline.ledger.records import Call, OutcomeRecord

    slug = f"bench-item-{i % 10_000_000:07d}"
    ok = status == "success"
    content = {
        "headline": f"Bench Widget {i} | Kitchen",
        "description": f"Meet the Bench Widget {i}, a kitchen pick at $25.00. " + "It offers a steel frame. " * 12,
        "highlights": ["A steel frame", "Three colour options", "Rated for daily use"],
        "seo_description": f"Bench Widget {i}: kitchen at $25.00. A steel frame; three colour options",
    }
    record = OutcomeRecord(
        id=_bench_id(run, slug, 1),
        run_id=run,
        slug=slug,
        status=status,
        content=content if ok else None,
        sketch=list(range(i, i + 32)) if ok else [],
        error=None if ok else "length: description has 12 characters",
        reason=None if ok else "length",
        retryable=not ok,
        model="gpt-4o-mini",
        prompt_template="catalogue-item",
        prompt_version="1",
        input_hash=f"{i:032x}",
        tokens_in=180,
        tokens_out=170,
        cost_usd=0.0001275,
        attempt=1,
        escalated=False,
        calls=[Call(model="gpt-4o-mini", tokens_in=180, tokens_out=170, cost_usd=0.0001275, outcome="pass")],
        run_budget_usd=10_000.0,
        offline=False,
        source_fields=["title", "category", "price", "features", "promo", "description"],
        started_at="2026-11-23T00:00:00.000+00:00",
        finished_at=f"2026-11-23T{i // 3_600_000 % 24:02d}:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}+00:00",
    )
    return record.line().decode()


def make_ledger(root: Path, records: int, runs: int = 20, slugs: int | None = None) -> dict[str, Any]:
    """A ledger of `records` lines over `runs` runs (one segment each), 5% rejects; no views yet. With
    `slugs`, record i is about slug i % slugs (each slug generated again in later runs), else every record
    has a slug of its own."""
    from content_pipeline.ledger.checksum import sign
    from content_pipeline.store import layout
    from content_pipeline.store.host import this_host

    per_run = -(-records // runs)
    written = 0
    for r in range(runs):
        run = f"bench-run-{r:03d}"
        folder = root / "ledger" / run
        folder.mkdir(parents=True, exist_ok=True)
        # each line as the writer writes it: the record's JSON, then its checksum (signed segments)
        template_ok, template_rej = _record_json(0, run), _record_json(0, run, "reject")
        first_id = _bench_id(run, "bench-item-0000000", 1)
        segment = root / layout.ledger_segment(run, f"{this_host()}-1-{r:08x}")
        with segment.open("wb") as out:
            for i in range(written, min(records, written + per_run)):
                template = template_rej if i % 20 == 19 else template_ok
                slug = f"bench-item-{i % (slugs or records):07d}"
                body = template.replace(first_id, _bench_id(run, slug, 1)).replace("bench-item-0000000", slug)
                out.write(sign(body.replace("Widget 0", f"Widget {i}").encode()))
            written = min(records, written + per_run)
    size = sum(p.stat().st_size for p in (root / "ledger").rglob("*.jsonl"))
    return {"records": written, "bytes": size}


def consolidate_alone(root: Path) -> dict[str, Any]:
    """One consolidation of the whole ledger (the first: every view is written), in a process of its own."""
    from content_pipeline.store import open_store
    from content_pipeline.views.consolidate import consolidate

    start = time.perf_counter()
    result = consolidate(open_store(str(root)))
    assert result is not None
    return {"seconds": time.perf_counter() - start, "records": result.records, "successes": result.successes}


def bookkeeping(root: Path) -> dict[str, Any]:
    """consolidate + audit + sync of the whole ledger, as go-live's finish runs them."""
    from content_pipeline.store import open_store
    from content_pipeline.views.audit import audit
    from content_pipeline.views.consolidate import consolidate, sync_checkpoint

    store = open_store(str(root))
    timings: dict[str, float] = {}
    start = time.perf_counter()
    result = consolidate(store)
    timings["consolidate_s"] = time.perf_counter() - start
    mark = time.perf_counter()
    checked = audit(store)
    timings["audit_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    sync_checkpoint(store)
    timings["sync_s"] = time.perf_counter() - mark
    assert checked.ok, checked.violations[:3]
    assert result is not None
    return {"seconds": time.perf_counter() - start, "records": result.records, **timings}


def bare_polars_scan(root: Path) -> dict[str, Any]:
    """What a user would write: scan every ledger file with polars and collect it."""
    import polars as pl

    start = time.perf_counter()
    frame = pl.scan_ndjson(sorted(str(p) for p in (root / "ledger").rglob("*.jsonl"))).collect()
    return {"seconds": time.perf_counter() - start, "records": frame.height}


def durable_appends(root: Path, records: int) -> dict[str, Any]:
    """Ledger appends through the store, each safe on disk before append returns."""
    from content_pipeline.ledger.records import OutcomeRecord
    from content_pipeline.ledger.writer import LedgerWriter
    from content_pipeline.store import open_store

    record = OutcomeRecord.model_validate_json(_record_line(1, "bench-appends"))
    writer = LedgerWriter(open_store(str(root)), "bench-appends")
    start = time.perf_counter()
    for _ in range(records):
        writer.append(record)
    seconds = time.perf_counter() - start
    writer.close()
    return {"seconds": seconds, "records": records, "per_s": records / seconds}


def bare_fsync_loop(root: Path, records: int) -> dict[str, Any]:
    """The floor: write one line and fsync it, in a loop, on the same disk."""
    line = _record_line(1, "bench-bare").encode()
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "bare.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    start = time.perf_counter()
    for _ in range(records):
        os.write(fd, line)
        os.fsync(fd)
    seconds = time.perf_counter() - start
    os.close(fd)
    return {"seconds": seconds, "records": records, "per_s": records / seconds}


def cli_env(work: Path, **extra: str) -> dict[str, str]:
    """A shell on a fresh machine with no Prefect API configured: no PREFECT_* or OPENAI_* from outside, an
    empty PREFECT_HOME (no profile points anywhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(work / "prefect-home"), PREFECT_LOGGING_LEVEL="WARNING", **extra)
    env.setdefault("DAILY_BUDGET_USD", BENCH_DAILY_BUDGET)
    return env


CLI = [sys.executable, "-m", "cli.main"]


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall clock at the start, seconds to the exit, the finished command); it must succeed."""
    started, start = time.time(), time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"{' '.join(cmd[2:])}: {done.stderr[-2000:]}"
    return started, seconds, done


def cli_go_live(work: Path, url: str, items: int, concurrency: int) -> dict[str, Any]:
    """`content-pipeline go-live` end to end in a fresh process, as an operator runs it ad hoc with no Prefect
    server configured (the core directly): from the command's start to its exit."""
    from bench.provider import provider_stats

    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    store = str(work / "store")
    env = cli_env(
        work,
        STORE_URL=store,
        CATALOGUE=catalogue,
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=url,
        CONCURRENCY=str(concurrency),
    )
    cmd = [*CLI, "go-live", "--limit", str(items), "--budget-usd", "10000", "--run-id", "bench-cli"]
    started, seconds, done = _timed(cmd, env)
    assert f"generated: {items} ({items} successes" in done.stdout, done.stdout[-2000:]
    first = provider_stats(url)["first_request_at"]
    return {
        "seconds": seconds,
        "items": items,
        "calls_span_s": _calls_span(store, "bench-cli"),
        "first_request_s": first - started,
    }


def tool_process(work: Path, url: str, items: int, concurrency: int) -> dict[str, Any]:
    """The usual batch-generation script (bench/tool.py) in a fresh process, timed like `cli_go_live`: from
    the command's start to its exit."""
    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    cmd = [sys.executable, "-m", "bench.tool", catalogue, str(work / "answers.jsonl"), url, str(concurrency)]
    _, seconds, _ = _timed(cmd, cli_env(work))
    answered = sum(1 for _ in (work / "answers.jsonl").open())
    assert answered == items, answered
    return {"seconds": seconds, "items": items}


def _first_request(work: Path, env: dict[str, str], extra: list[str]) -> float:
    """Seconds from `go-live --limit 20` starting to its first LLM request reaching a fresh provider."""
    from bench.provider import fake_provider, provider_stats

    shutil.rmtree(work, ignore_errors=True)
    with fake_provider(latency_ms=200) as url:
        run_env = {**env, "STORE_URL": str(work), "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": url}
        started, _, _ = _timed([*CLI, "go-live", "--limit", "20", *extra], run_env)
        return float(provider_stats(url)["first_request_at"]) - started


def start_up(work: Path, repeats: int, doors: list[str]) -> dict[str, Any]:
    """The fixed cost of an ad-hoc run on the bundled sample: `status`, `go-live` with nothing left to do,
    and the time to the first LLM request of a run, on the front doors named in `doors`: `direct` (the core,
    no Prefect API configured), `server` (the flow on a running server, PREFECT_API_URL), `temporary` (the
    flow on a temporary server of its own, `--prefect`). Medians of `repeats` runs (fewer for `temporary`)."""
    from cli.temporary_server import temporary_server

    env = cli_env(work, STORE_URL=str(work / "sample-store"))
    _timed([*CLI, "go-live"], env)  # the sample generated once: now nothing is left to do
    if "temporary" in doors:  # untimed: a fresh PREFECT_HOME creates Prefect's database once
        _timed([*CLI, "go-live", "--prefect"], env)
    out: dict[str, Any] = {"repeats": repeats}
    out["status_s"] = statistics.median(_timed([*CLI, "status"], env)[1] for _ in range(repeats))
    os.environ.update(PREFECT_HOME=str(work / "server-home"))  # the running server's own database
    with temporary_server() if "server" in doors else nullcontext("") as api:
        options = {
            "direct": (env, []),
            "server": ({**env, "PREFECT_API_URL": api}, []),
            "temporary": (env, ["--prefect"]),
        }
        for door in doors:
            door_env, extra = options[door]
            n = max(1, repeats // 3) if door == "temporary" else repeats
            out[f"nothing_to_do_{door}_s"] = statistics.median(
                _timed([*CLI, "go-live", *extra], door_env)[1] for _ in range(n)
            )
            out[f"first_request_{door}_s"] = statistics.median(
                _first_request(work / f"fresh-{door}", door_env, extra) for _ in range(n)
            )
    return out


def go_live_end_to_end(work: Path, items: int, prefect: bool = False) -> dict[str, Any]:
    """`content-pipeline go-live` on `items` items with the offline model at zero latency, as a user runs it
    with no Prefect server configured: the core directly, or with `prefect` the flow on a temporary server
    of its own; wall time and the process's peak memory (the temporary server's not included)."""
    import resource

    catalogue = write_catalogue(work / "catalogue.jsonl", items)
    env = cli_env(work, STORE_URL=str(work / "store"), CATALOGUE=catalogue)
    cmd = [*CLI, "go-live", "--budget-usd", "1000", *(["--prefect"] if prefect else [])]
    # a first run on a fresh PREFECT_HOME creates Prefect's database: do it once on another store, untimed,
    # as every machine has done before its first real run
    cold = time.perf_counter()
    _timed([*cmd, "--limit", "1"], {**env, "STORE_URL": str(work / "warm-up")})
    cold_s = time.perf_counter() - cold
    _, seconds, done = _timed([*cmd, "--limit", str(items)], env)
    generated = next((line for line in done.stdout.splitlines() if line.startswith("- generated:")), "")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "items": items,
        "generated": generated[2:],
        "child_peak_rss_mb": round(peak, 1),
        "first_run_on_a_fresh_prefect_home_s": round(cold_s, 1),
    }
