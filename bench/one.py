"""Run one workload in this process: `python -m bench.one FUNCTION JSON-ARGS`; prints `RESULT {json}` last."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from bench import catalogue, money, ranking, workloads


def main() -> None:
    name, raw = sys.argv[1], json.loads(sys.argv[2])
    args = {k: Path(v) if k in ("work", "root") else v for k, v in raw.items()}
    module = next(m for m in (workloads, money, catalogue, ranking) if hasattr(m, name))
    result = getattr(module, name)(**args)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
