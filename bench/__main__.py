"""`python -m bench [--smoke] [--only N]`: every scenario of BENCHMARKS.md in one go; one JSON line per
measurement, then a summary table. Each measurement runs in a fresh process (clean peak memory)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.provider import fake_provider

FULL = {
    "throughput": {
        "items": 3000,
        "latency_ms": 500,
        "jitter": 0.2,
        "concurrency": 50,
        "rpm": 6000,
        "early": {"items": 200, "rpm": 3000, "burst": 0.01},  # the 429s of a run's first seconds (issue 18)
    },
    "bookkeeping": [(100_000, None), (1_000_000, None), (1_000_000, 100_000)],  # (records, distinct slugs)
    "appends": 5000,
    "go_live": 1000,
    "start_up": 5,
    "doors": ["direct", "server", "temporary"],  # scenarios 4 and 5: the CLI's front doors measured
    "money": {"items": 1000, "budget_items": 1500, "concurrency": 50, "templates": 4, "machines": 8},
    "big": {"rows": 650_000, "limits": [10, 100]},
    "ranking": {"seeds": 1000, "days": 30, "per_day": 10, "window": 7, "alpha": 0.05, "min_posts": 20, "lift": 0.2},
}
SMOKE = {
    "throughput": {
        "items": 40,
        "latency_ms": 20,
        "jitter": 0.2,
        "concurrency": 8,
        "rpm": 6000,
        "early": {"items": 20, "rpm": 3000, "burst": 0.01},
    },
    "bookkeeping": [(2000, None), (2000, 200)],
    "appends": 200,
    "go_live": 30,
    "start_up": 1,
    "doors": ["direct"],  # the flow doors' start-up is seconds of Prefect server: tests/cli/test_cli_crash.py runs them
    "money": {"items": 30, "budget_items": 200, "concurrency": 50, "templates": 2, "machines": 4},
    "big": {"rows": 3000, "limits": [5, 10]},
    "ranking": {"seeds": 5, "days": 12, "per_day": 4, "window": 3, "alpha": 0.05, "min_posts": 8, "lift": 0.5},
}


def run(name: str, attempts: int = 1, **args: Any) -> dict[str, Any]:
    """bench.workloads.<name>(**args) in a fresh process; its result with peak_rss_mb (and `attempts` when
    more than one was needed)."""
    cmd = [
        sys.executable,
        "-m",
        "bench.one",
        name,
        json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in args.items()}),
    ]
    for attempt in range(1, attempts + 1):
        if attempt > 1 and "work" in args:  # a fresh start: nothing of the failed attempt's store is reused
            shutil.rmtree(args["work"], ignore_errors=True)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode == 0 and lines:
            result = dict(json.loads(lines[-1][len("RESULT ") :]))
            return {**result, **({"attempts": attempt} if attempt > 1 else {})}
    errors = [x for x in done.stderr.splitlines() if "Error" in x] or done.stderr.strip().splitlines()[-1:]
    raise SystemExit(f"bench: {name} failed (exit {done.returncode}): {errors[:5]}")


def emit(line: dict[str, Any], out: list[dict[str, Any]]) -> None:
    out.append(line)
    print(json.dumps(line), flush=True)


def throughput(cfg: dict[str, Any], work: Path, out: list[dict[str, Any]]) -> None:
    items, conc, latency = cfg["items"], cfg["concurrency"], cfg["latency_ms"]
    ceiling = min(conc / (latency / 1000), cfg["rpm"] / 60)
    rates = {}
    forms = ("bare_asyncio", "generate_stage", "core_generate_stage", "task_per_item", "tool_process", "cli_go_live")
    for form in forms:
        with fake_provider(latency, cfg["jitter"], cfg["rpm"]) as url:
            # a task run per item loads Prefect's temporary SQLite server to "database is locked" now and then
            result = run(
                form,
                attempts=2 if form == "task_per_item" else 1,
                work=work / form,
                url=url,
                items=items,
                concurrency=conc,
            )
        rates[form] = items / result["seconds"]
        line = {
            "scenario": "1-throughput",
            "form": form,
            "items": items,
            "latency_ms": latency,
            "concurrency": conc,
            "rpm": cfg["rpm"],
            "seconds": round(result["seconds"], 2),
            "items_per_s": round(rates[form], 2),
            "ceiling_items_per_s": round(ceiling, 2),
            "share_of_ceiling": round(rates[form] / ceiling, 3),
            "peak_rss_mb": result["peak_rss_mb"],
        }
        if "calls_span_s" in result:  # the wall time split: generation vs everything around it
            line["first_call_to_last_answer_s"] = round(result["calls_span_s"], 2)
            line["around_generation_s"] = round(result["seconds"] - result["calls_span_s"], 2)
        if "first_request_s" in result:
            line["start_to_first_request_s"] = round(result["first_request_s"], 2)
        if "attempts" in result:
            line["attempts"] = result["attempts"]
        if "durable_appends" in result:  # the cost of intent before spend: durable appends per call
            appends = result["durable_appends"]
            line["durable_appends"] = appends
            calls = appends.get("intents_lines", 0)
            line["durable_appends_per_call"] = round(
                (appends.get("intents_appends", 0) + appends.get("ledger_appends", 0)) / max(calls, 1), 3
            )
        emit(line, out)
    early = cfg["early"]
    seen = {}
    for slow_start in (True, False):  # without it: every call at once, as before issue 18
        seen[slow_start] = run(
            "early_429s",
            work=work / f"early-{'on' if slow_start else 'off'}",
            items=early["items"],
            concurrency=conc,
            latency_ms=latency,
            rpm=early["rpm"],
            burst=early["burst"],
            slow_start=slow_start,
        )
    emit(
        {
            "scenario": "1-throughput",
            "form": "early_429s",
            "items": early["items"],
            "latency_ms": latency,
            "concurrency": conc,
            "rpm": early["rpm"],
            "burst": early["burst"],
            "rate_limited_429s": seen[True]["rate_limited"],
            "seconds": round(seen[True]["seconds"], 2),
            "peak_in_flight": seen[True]["peak_in_flight"],
            "without_slow_start_429s": seen[False]["rate_limited"],
            "without_slow_start_seconds": round(seen[False]["seconds"], 2),
            "target_429s": 0,
            "target_met": seen[True]["rate_limited"] == 0,
        },
        out,
    )
    emit(
        {
            "scenario": "1-throughput",
            "form": "ratios",
            "generate_stage_share_of_ceiling": round(rates["generate_stage"] / ceiling, 3),
            "core_generate_stage_share_of_ceiling": round(rates["core_generate_stage"] / ceiling, 3),
            "cli_go_live_share_of_ceiling": round(rates["cli_go_live"] / ceiling, 3),
            "generate_stage_vs_task_per_item": round(rates["generate_stage"] / rates["task_per_item"], 2),
            "generate_stage_vs_bare_asyncio": round(rates["generate_stage"] / rates["bare_asyncio"], 3),
            "cli_go_live_vs_tool_process": round(rates["cli_go_live"] / rates["tool_process"], 3),
            "target_met": rates["core_generate_stage"] >= 0.95 * ceiling
            and rates["generate_stage"] > rates["task_per_item"],
        },
        out,
    )


def bookkeeping(sizes: list[tuple[int, int | None]], work: Path, out: list[dict[str, Any]]) -> None:
    """consolidate + audit + sync against a bare polars scan, per ledger size; and a first consolidation in
    a process of its own, for its own peak memory (flat: it follows master's size, not the ledger's)."""
    for records, slugs in sizes:
        root = work / f"ledger-{records}-{slugs}"
        made = run("make_ledger", root=root, records=records, slugs=slugs)
        alone = run("consolidate_alone", root=root)
        shutil.rmtree(root / "master")  # the measured run below consolidates from nothing too
        ours = run("bookkeeping", root=root)
        bare = run("bare_polars_scan", root=root)
        emit(
            {
                "scenario": "2-bookkeeping",
                "records": made["records"],
                "slugs": slugs or made["records"],
                "ledger_mb": round(made["bytes"] / 2**20, 1),
                "consolidate_audit_sync_s": round(ours["seconds"], 2),
                "consolidate_s": round(ours["consolidate_s"], 2),
                "audit_s": round(ours["audit_s"], 2),
                "sync_s": round(ours["sync_s"], 2),
                "peak_rss_mb": ours["peak_rss_mb"],
                "consolidate_alone_s": round(alone["seconds"], 2),
                "consolidate_peak_rss_mb": alone["peak_rss_mb"],
                "bare_polars_scan_s": round(bare["seconds"], 2),
                "bare_peak_rss_mb": bare["peak_rss_mb"],
                "ratio_to_bare": round(ours["seconds"] / bare["seconds"], 2),
                "target_met": ours["seconds"] <= 2 * bare["seconds"] and ours["peak_rss_mb"] < 2048,
            },
            out,
        )
        shutil.rmtree(root, ignore_errors=True)


def appends(records: int, work: Path, out: list[dict[str, Any]]) -> None:
    ours = run("durable_appends", root=work / "appends", records=records)
    bare = run("bare_fsync_loop", root=work / "bare-appends", records=records)
    emit(
        {
            "scenario": "3-durable-appends",
            "records": records,
            "ledger_appends_per_s": round(ours["per_s"]),
            "bare_write_fsync_per_s": round(bare["per_s"]),
            "ratio_to_bare": round(ours["per_s"] / bare["per_s"], 3),
            "target_met": ours["per_s"] >= 0.5 * bare["per_s"],
        },
        out,
    )


def go_live(items: int, doors: list[str], work: Path, out: list[dict[str, Any]]) -> None:
    for door, prefect in (("direct", False), ("temporary", True)):
        if door not in doors:
            continue
        result = run("go_live_end_to_end", work=work / f"go-live-{door}", items=items, prefect=prefect)
        emit(
            {
                "scenario": "4-go-live",
                "form": door,
                "items": items,
                "seconds": round(result["seconds"], 2),
                "peak_rss_mb": result["child_peak_rss_mb"],
                "generated": result["generated"],
                "one_item_first_run_fresh_prefect_home_s": result["first_run_on_a_fresh_prefect_home_s"],
                "target_met": result["seconds"] < 60,
            },
            out,
        )


def start_up(repeats: int, doors: list[str], work: Path, out: list[dict[str, Any]]) -> None:
    result = run("start_up", work=work / "start-up", repeats=repeats, doors=doors)
    status = result["status_s"]
    line: dict[str, Any] = {"scenario": "5-start-up", "repeats": repeats, "status_s": round(status, 2)}
    for door in doors:
        nothing = result[f"nothing_to_do_{door}_s"]
        line[f"nothing_to_do_{door}_s"] = round(nothing, 2)
        line[f"nothing_to_do_{door}_vs_status"] = round(nothing / status, 2)
        line[f"first_request_{door}_s"] = round(result[f"first_request_{door}_s"], 2)
    direct = result["nothing_to_do_direct_s"]
    line["target_met"] = direct <= 4 * status and direct < 3 and result["first_request_direct_s"] <= 3
    emit(line, out)


def _half_price(form: str, items: int, full: str, half: str, got: dict[str, Any], out: list[dict[str, Any]]) -> None:
    """A scenario 6 line: the cost per item at the full price and at the half price, and their ratio (0.5x)."""
    ratio = got[f"{half}_vs_{full}"]
    line = {"scenario": "6-money", "form": form, "items": items}
    line |= {f"{k}_usd_per_item": round(got[f"{k}_usd_per_item"], 9) for k in (full, half)}
    emit(line | {f"{half}_vs_{full}": round(ratio, 4), "target_met": abs(ratio - 0.5) <= 0.005}, out)


def money(cfg: dict[str, Any], work: Path, out: list[dict[str, Any]]) -> None:
    """Scenario 6: what batch mode, reruns and the budget's last cents come to."""
    items = cfg["items"]
    batch = run("batch_vs_sync", work=work / "batch-vs-sync", items=items)
    _half_price("batch_vs_sync", items, "sync", "batch", batch, out)
    flex = run("flex_vs_auto", work=work / "flex-vs-auto", items=items)
    _half_price("flex_vs_auto", items, "auto", "flex", flex, out)
    hits = run(
        "cache_key_hits", work=work / "cache-key", items=items, templates=cfg["templates"], machines=cfg["machines"]
    )
    emit(
        {"scenario": "6-money", "form": "prompt_cache_key", **{k: v for k, v in hits.items() if k != "peak_rss_mb"}}
        | {"target_met": hits["hit_share_key"] > hits["hit_share_no_key"]},
        out,
    )
    again = run("reruns", work=work / "reruns", items=items)
    emit(
        {
            "scenario": "6-money",
            "form": "reruns",
            "items": items,
            "full_usd": round(again["full_usd"], 6),
            "unchanged_rerun_usd": round(again["unchanged_rerun_usd"], 6),
            "changed_items": again["changed_items"],
            "changed_rerun_generated": again["changed_rerun_generated"],
            "changed_rerun_vs_full": round(again["changed_rerun_vs_full"], 4),
            "target_met": again["unchanged_rerun_usd"] == 0 and abs(again["changed_rerun_vs_full"] - 0.1) <= 0.02,
        },
        out,
    )
    used = run("budget_use", work=work / "budget-use", items=cfg["budget_items"], concurrency=cfg["concurrency"])
    emit(
        {
            "scenario": "6-money",
            "form": "budget_use",
            "items": used["items"],
            "concurrency": used["concurrency"],
            "budget_usd": used["budget_usd"],
            "spent_usd": round(used["spent_usd"], 6),
            "share_of_budget": round(used["share_of_budget"], 4),
            "target_met": 0.95 <= used["share_of_budget"] <= 1.0,
        },
        out,
    )


def big_catalogue(cfg: dict[str, Any], work: Path, out: list[dict[str, Any]]) -> None:
    """Scenario 7: a 200 MB catalogue and runs of a small LIMIT, and a full inventory of it."""
    made = run("write_big_catalogue", path=str(work / "big" / "catalogue.jsonl"), rows=cfg["rows"])
    path, mb = made["path"], made["mb"]
    runs = run("small_limit_runs", work=work / "big", catalogue=path, limits=cfg["limits"])
    for one in runs["runs"]:
        line = {"scenario": "7-big-catalogue", "form": f"go-live --limit {one['limit']}", "rows": made["rows"]}
        line |= {"catalogue_mb": mb, **one, "peak_rss_mb_of_the_runs": runs["child_peak_rss_mb"]}
        emit(line | {"target_met": one["first_call_s"] < 10 and runs["child_peak_rss_mb"] < 500}, out)
    growth = [one["store_growth_kb"] for one in runs["runs"]]
    per_item = [g / one["limit"] for g, one in zip(growth, runs["runs"], strict=True)]
    emit(
        {
            "scenario": "7-big-catalogue",
            "form": "store growth per claimed item",
            "kb_per_item": [round(x, 2) for x in per_item],
            "largest_run_vs_catalogue": round(max(growth) / 1024 / mb, 4),
            "target_met": max(per_item) <= 2 * min(per_item) and max(growth) / 1024 < mb / 10,
        },
        out,
    )
    full = run("full_inventory", work=work / "big", catalogue=path)
    full.pop("peak_rss_mb", None)  # the bench process's own, not the command's
    line = {"scenario": "7-big-catalogue", "form": "inventory (every row)", "rows": made["rows"], **full}
    emit(line | {"target_met": full["child_peak_rss_mb"] < 500}, out)


def table(lines: list[dict[str, Any]]) -> str:
    rows = ["| scenario | measurement | figure | target met |", "|---|---|---|---|"]
    for line in lines:
        rest = {k: v for k, v in line.items() if k not in ("scenario", "target_met")}
        figure = ", ".join(f"{k}={v}" for k, v in rest.items())
        rows.append(f"| {line['scenario']} | {rest.get('form', '')} | {figure} | {line.get('target_met', '')} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the bench code runs (seconds)")
    parser.add_argument(
        "--only", choices=[str(n) for n in range(1, 9)], action="append", help="run only these scenarios"
    )
    parser.add_argument("--items", type=int, help="scenario 1: items per form (default 3000)")
    parser.add_argument("--rpm", type=int, help="scenario 1: the fake provider's requests per minute (default 6000)")
    args = parser.parse_args()
    cfg = SMOKE if args.smoke else FULL
    overrides = {k: v for k, v in (("items", args.items), ("rpm", args.rpm)) if v is not None}
    cfg = {**cfg, "throughput": {**cfg["throughput"], **overrides}}
    only = set(args.only or [str(n) for n in range(1, 9)])
    out: list[dict[str, Any]] = []
    started = time.perf_counter()
    print(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "smoke": args.smoke,
            }
        ),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="content-pipeline-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        if "3" in only:
            appends(cfg["appends"], work, out)
        if "5" in only:
            start_up(cfg["start_up"], cfg["doors"], work, out)
        if "4" in only:
            go_live(cfg["go_live"], cfg["doors"], work, out)
        if "1" in only:
            throughput(cfg["throughput"], work, out)
        if "2" in only:
            bookkeeping(cfg["bookkeeping"], work, out)
        if "6" in only:
            money(cfg["money"], work, out)
        if "7" in only:
            big_catalogue(cfg["big"], work, out)
        if "8" in only:
            ranked = run("sequential_checks", **cfg["ranking"])
            target = ranked["a_a_decided_share"] <= cfg["ranking"]["alpha"]
            emit(
                {"scenario": "8-template-rank", "form": "A/A and A/B, daily checks", **ranked, "target_met": target},
                out,
            )
    print(f"\n{table(out)}\n\nbench: {time.perf_counter() - started:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
