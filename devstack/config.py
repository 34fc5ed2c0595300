"""What the local stacks are set up with and say: which schedules spend (and whether they run), where
failures are announced, the LLM limits, and the lines `make up` and `make down` print."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

SPENDING_FLOWS = ("go-live", "replay-failed", "generate", "publish")  # their schedules pay a provider or post
SPENDING_SETTING = "SPENDING_SCHEDULES"  # `active`: their schedules run on a fresh stack with a real provider

HEARTBEAT_S = 30  # a flow run's heartbeat period (PREFECT_FLOWS_HEARTBEAT_FREQUENCY; Prefect's least is 30)


def deployment_lines(deployments: list[dict[str, Any]]) -> list[str]:
    """What `make up` prints of each deployment: its name, schedule, and whether the schedule runs."""
    width = max((len(d["name"]) for d in deployments), default=0)
    lines = []
    for d in deployments:
        if not d["schedules"]:
            state = "no schedule (runs on demand)"
        elif d["active"]:
            state = f"schedule active: {', '.join(d['schedules'])}"
        else:
            why = f" (it spends or posts: {SPENDING_SETTING}=active starts it)" if d["spends"] else ""
            state = f"schedule PAUSED: {', '.join(d['schedules'])}{why}"
        lines.append(f"  {d['name']:<{width}}  {state}")
    return lines


def spending_schedules_active(offline: bool, environ: dict[str, str]) -> bool:
    """Whether the schedules that spend run on a new stack: always with the offline model (it costs
    nothing), else only when the operator says so with SPENDING_SCHEDULES=active."""
    value = environ.get(SPENDING_SETTING, "").strip().lower()
    if value not in ("", "active", "paused"):
        raise SystemExit(f"{SPENDING_SETTING} must be `active` or `paused`, not {value!r}")
    return offline or value == "active"


@dataclass(frozen=True)
class UpConfig:
    """What `make up` and `make up-cluster` configure from the environment: where failures are announced, the
    LLM request rate and concurrency limits, and whether the spending schedules run."""

    notify: dict[str, str]
    rate_per_s: float
    concurrency: int
    spending_active: bool

    @classmethod
    def from_environment(cls) -> UpConfig:
        from content_pipeline.settings import load_settings

        settings, env = load_settings(), dict(os.environ)
        notify = {"webhook": env.get("NOTIFY_WEBHOOK_URL", ""), "slack": env.get("SLACK_WEBHOOK_URL", "")}
        rate = float(env.get("LLM_REQUESTS_PER_S", "100"))
        return cls(notify, rate, settings.concurrency, spending_schedules_active(settings.offline, env))


def stopped_line(what: str, stopped: list[str]) -> str:
    """What `make down` says it stopped."""
    return f"stopped{what}: " + (", ".join(stopped) if stopped else "nothing was running")
