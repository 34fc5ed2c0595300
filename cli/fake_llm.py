"""`content-pipeline fake-llm serve`: a local OpenAI-compatible server to rehearse a run against."""

from __future__ import annotations

import argparse
import json
import threading

from content_pipeline.errors import BadInputError

HELP = "a local OpenAI-compatible server to rehearse a run (fake-llm serve)"


def fake_llm_arguments(cmd: argparse.ArgumentParser) -> None:
    from content_pipeline.rehearsal.faults import FAULTS

    cmd.add_argument("action", choices=["serve"], help="serve: run the server until interrupted")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    cmd.add_argument("--key", help="the only API key accepted (default: any key)")
    cmd.add_argument("--latency-ms", type=float, default=0.0, help="mean latency of an answer, ms")
    cmd.add_argument("--jitter", type=float, default=0.0, help="latency spread: uniform within mean x (1 +- J)")
    cmd.add_argument("--rpm", type=int, default=0, help="requests per minute before 429 (0: no limit)")
    cmd.add_argument("--tpm", type=int, default=0, help="tokens per minute before 429 (0: no limit)")
    cmd.add_argument("--burst", type=float, default=0.0, help="share of a minute's allowance usable at once")
    cmd.add_argument("--seed", type=int, help="seed for latencies and fault draws")
    cmd.add_argument(
        "--cache-min-tokens",
        type=int,
        default=1024,
        help="a prompt's fixed part this long is served from the prompt cache once seen (default 1024)",
    )
    cmd.add_argument("--batch-delay-s", type=float, default=0.0, help="a batch ends this long after it is created")
    cmd.add_argument(
        "--batch-expire-share", type=float, default=0.0, help="share of a batch's requests left unrun (it expires)"
    )
    cmd.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:RATE][@TEXT][*TIMES]",
        help="a fault on demand (repeatable); KIND: " + ", ".join(FAULTS),
    )


def fake_llm(args: argparse.Namespace) -> int:
    import signal

    from content_pipeline.rehearsal.faults import FaultRule
    from content_pipeline.rehearsal.server import FakeLLM, FakeLLMConfig

    config = FakeLLMConfig(
        key=args.key,
        latency_ms=args.latency_ms,
        jitter=args.jitter,
        rpm=args.rpm,
        tpm=args.tpm,
        burst=args.burst,
        seed=args.seed,
        cache_min_tokens=args.cache_min_tokens,
        batch_delay_s=args.batch_delay_s,
        batch_expire_share=args.batch_expire_share,
        faults=[FaultRule.parse(spec) for spec in args.fault],
    )
    try:
        server = FakeLLM(config, args.host, args.port)
    except OSError as exc:
        raise BadInputError(f"fake-llm: cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    signal.signal(signal.SIGTERM, lambda *_: server.httpd.shutdown())
    print(f"fake-llm: OpenAI-compatible API at {server.url}  (OPENAI_BASE_URL={server.url})", flush=True)
    for rule in config.faults:
        print(f"fake-llm: fault {rule.describe()}", flush=True)
    print(f"fake-llm: stats at {server.url}/_fake/stats; new faults: POST {server.url}/_fake/faults", flush=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        while serving.is_alive():
            serving.join(0.5)
    except KeyboardInterrupt:
        server.httpd.shutdown()
        serving.join()
    print(f"fake-llm: stopped; {json.dumps(server.stats())}", flush=True)
    return 0
