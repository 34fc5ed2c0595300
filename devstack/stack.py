"""`make up` / `make down`: a local Prefect server on loopback (SQLite), a process work pool, the project's
blocks, every deployment of prefect.yaml, the global limits, the failure and crash automations and a worker."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.config import HEARTBEAT_S, SPENDING_FLOWS, UpConfig, deployment_lines, stopped_line

ROOT = Path(__file__).resolve().parents[1]
POOL = "content-pipeline"
STOP_ORDER = {"server": 1, "postgres": 2, "seaweed": 2}  # stopped after the workers (0), in this order
STOP_BOUND_S = {"seaweed": 5.0}  # how long after SIGTERM before SIGKILL (15 s unless named); its data is durable
LOG_RECORD = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| (\w+) +\|")  # a record's first line in a Prefect log
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")  # a traceback's last line
FAILURE_BLOCKS = {"webhook": "content-pipeline-failure-webhook", "slack": "content-pipeline-failure-slack"}


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


class Stack:
    """The processes and state of one local stack, kept under `state_dir`."""

    def __init__(self, state_dir: Path, port: int = 4200, host: str = "127.0.0.1") -> None:
        self.state_dir = state_dir.resolve()
        self.port = port
        self.host = host  # where the server listens, and the address every worker reaches it at
        self.api_url = f"http://{host}:{port}/api"
        self.ui_url = f"http://{host}:{port}"
        self.pids = self.state_dir / "pids.json"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PREFECT_HOME": str(self.state_dir / "home"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": self.ui_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # every flow run the workers start beats this often; the crash automation waits SILENT_BEATS of them
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_S)),
        }

    def spawn(
        self,
        name: str,
        args: list[str],
        extra_env: dict[str, str] | None = None,
        env: Callable[[dict[str, str]], dict[str, str]] | None = None,
    ) -> int:
        """Start `args` in a session of its own, logging to `name`.log; its pid and start time are kept.
        `env` trims the environment it gets (the stack's, with `extra_env`)."""
        log = open(self.state_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        environ = {**self.env, **(extra_env or {})}
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env(environ) if env else environ, stdout=log, stderr=log, start_new_session=True
        )
        pids = self._read_pids()
        pids[name] = [proc.pid, _started(proc.pid)]
        self.pids.write_text(json.dumps(pids))
        return proc.pid

    def _read_pids(self) -> dict[str, list[int]]:
        return json.loads(self.pids.read_text()) if self.pids.exists() else {}

    def running(self) -> list[str]:
        """The processes of this stack that still run (the very ones started: pid and start time match)."""
        return [name for name, (pid, started) in self._read_pids().items() if _started(pid) == started]

    def _prefect(self, *args: str) -> str:
        done = subprocess.run([_bin("prefect"), *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"prefect {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def start_server(self, timeout_s: float = 120, extra_env: dict[str, str] | None = None) -> None:
        """Start `prefect server start` (devstack/prefect_server.py: its SQLite transactions IMMEDIATE; `extra_env`:
        its database URL, say) and wait until it answers."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.healthy():
            raise SystemExit(f"a Prefect server already answers on {self.api_url}: run `make down` first")
        command = [sys.executable, "-m", "devstack.prefect_server", "--host", self.host, "--port", str(self.port)]
        self.spawn("server", command, extra_env)
        deadline = time.monotonic() + timeout_s
        while not self.healthy():
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"the Prefect server did not answer within {timeout_s:.0f}s; see {self.state_dir}/server.log"
                )
            time.sleep(0.5)

    def server_errors(self, since: int = 0) -> tuple[list[str], int]:
        """The ERROR and CRITICAL lines the server logged after byte `since` of its log (each with the
        exception its traceback ends in), and the log's size now: a stack whose server logs an error is
        broken, whatever its API answers (a scheduler failing every minute answers health checks fine)."""
        log = self.state_dir / "server.log"
        raw = log.read_bytes() if log.exists() else b""
        lines = raw[since:].decode(errors="replace").splitlines()
        levels = {n: m.group(1) for n, line in enumerate(lines) if (m := LOG_RECORD.match(line))}
        found = []
        for start, end in itertools.pairwise([*levels, len(lines)]):
            if levels[start] in ("ERROR", "CRITICAL"):
                raised = [line for line in lines[start + 1 : end] if EXCEPTION_LINE.match(line)]
                found.append(" / ".join([lines[start], *raised[-1:]]))
        return found, len(raw)

    def configure(
        self, notify: dict[str, str], rate_per_s: float, concurrency: int, spending_active: bool = True
    ) -> dict[str, Any]:
        """Work pool, blocks, global limits, deployments and automations; the schedules of the deployments
        that spend (SPENDING_FLOWS) paused unless `spending_active`. Returns the automation names
        (`automations`) and each deployment's name, schedules and whether they run (`deployments`)."""
        self._prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
        self._prefect("block", "register", "-m", "blocks")
        self._prefect("--no-prompt", "deploy", "--all")
        script = [
            sys.executable,
            "-m",
            "devstack.stack",
            "_configure",
            json.dumps(
                {
                    "notify": notify,
                    "rate_per_s": rate_per_s,
                    "concurrency": concurrency,
                    "spending_active": spending_active,
                }
            ),
        ]
        done = subprocess.run(script, cwd=ROOT, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"configuring limits and automations failed:\n{done.stderr[-3000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def start_worker(
        self,
        name: str = "worker",
        extra_env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
        limit: int | None = None,
    ) -> int:
        """A process worker on the pool; `prefix` wraps its command (another host's namespace, say) and
        `limit` caps the flow runs it runs at once."""
        command = [_bin("prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--name", name]
        if limit is not None:
            command += ["--limit", str(limit)]
        return self.spawn(name, [*(prefix or []), *command], extra_env)

    def down(self) -> list[str]:
        """Stop exactly the processes this stack started (workers first, then the server, then what the
        server stands on: its database and the store)."""
        pids = self._read_pids()
        stopped = []
        for name in sorted(pids, key=lambda n: STOP_ORDER.get(n, 0)):
            pid, started = pids[name]
            if _started(pid) != started:  # gone, or the pid now belongs to another process: leave it be
                continue
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + STOP_BOUND_S.get(name, 15.0)
            while time.monotonic() < deadline and _group_alive(pid):
                time.sleep(0.2)
            if not _group_alive(pid):
                stopped.append(f"{name} (pid {pid})")
                continue
            os.killpg(pid, signal.SIGKILL)
            stopped.append(f"{name} (pid {pid}, killed)")
        self.pids.unlink(missing_ok=True)
        return stopped


def _started(pid: int) -> int:
    """The process's start time in clock ticks since boot (0 when it does not exist): with the pid, it
    names one process, so a recycled pid is never mistaken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def _group_alive(pid: int) -> bool:
    """True while any process of the group `pid` leads is alive (a dead leader we started is reaped)."""
    with contextlib.suppress(ChildProcessError):  # not our child when `make down` runs on its own
        os.waitpid(pid, os.WNOHANG)
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _configure(raw: str) -> None:
    """Inside the stack's environment: global limits, notification blocks and automations."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    from devstack.automations import announce_failures, crash_silent_runs

    config = json.loads(raw)
    from content_pipeline.settings import load_settings

    settings = load_settings()
    with get_client(sync_client=True) as client:
        for name, limit, decay in (
            (settings.llm_rate_limit_name, max(1, round(config["rate_per_s"])), config["rate_per_s"]),
            (settings.llm_concurrency_limit_name, config["concurrency"], 0.0),
        ):
            try:
                client.read_global_concurrency_limit_by_name(name)
                client.update_global_concurrency_limit(
                    name, GlobalConcurrencyLimitUpdate(limit=limit, slot_decay_per_second=decay, active=True)
                )
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit, slot_decay_per_second=decay, active=True)
                )
    blocks = []
    if config["notify"].get("webhook"):
        CustomWebhookNotificationBlock(
            name="content-pipeline failures",
            url=config["notify"]["webhook"],
            method="POST",
            json_data={"subject": "{{subject}}", "text": "{{body}}"},
        ).save(FAILURE_BLOCKS["webhook"], overwrite=True)
        blocks.append((CustomWebhookNotificationBlock, FAILURE_BLOCKS["webhook"]))
    if config["notify"].get("slack"):
        SlackWebhook(url=config["notify"]["slack"]).save(FAILURE_BLOCKS["slack"], overwrite=True)
        blocks.append((SlackWebhook, FAILURE_BLOCKS["slack"]))
    names = [crash_silent_runs(), *(announce_failures(block_type, name) for block_type, name in blocks)]
    print(json.dumps({"automations": names, "deployments": _schedules(bool(config["spending_active"]))}))


def _schedules(spending_active: bool) -> list[dict[str, Any]]:
    """Pause the schedules of SPENDING_FLOWS' deployments unless `spending_active` (the deployments stay
    runnable by hand); then every deployment's name, schedules and whether they run, as the server has them."""
    from prefect.client.orchestration import get_client

    shown = []
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        for deployment in sorted(client.read_deployments(), key=lambda d: (flows[d.flow_id], d.name)):
            flow_name = flows[deployment.flow_id]
            if flow_name in SPENDING_FLOWS and not spending_active:
                for schedule in deployment.schedules:  # the scheduler drops the runs it made of them
                    client.update_deployment_schedule(deployment.id, schedule.id, active=False)
                deployment = client.read_deployment(deployment.id)
            shown.append(
                {
                    "name": f"{flow_name}/{deployment.name}",
                    "schedules": [_describe(s.schedule) for s in deployment.schedules],
                    "active": not deployment.paused and any(s.active for s in deployment.schedules),
                    "spends": flow_name in SPENDING_FLOWS,
                }
            )
    return shown


def _describe(schedule: Any) -> str:
    """A schedule as a person reads it: `cron 0 */4 * * * UTC`, `every 60 s`."""
    if getattr(schedule, "cron", None):
        return f"cron {schedule.cron} {schedule.timezone or 'UTC'}"
    if getattr(schedule, "interval", None):
        return f"every {schedule.interval.total_seconds():g} s"
    return str(schedule)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.stack")
    parser.add_argument("command", choices=["up", "down", "_configure"])
    parser.add_argument("config", nargs="?")
    parser.add_argument("--state-dir", default=str(ROOT / ".prefect-local"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PREFECT_PORT", "4200")))
    args = parser.parse_args(argv)
    if args.command == "_configure":
        _configure(args.config)
        return 0
    stack = Stack(Path(args.state_dir), args.port)
    if args.command == "down":
        print(stopped_line("", stack.down()))
        return 0
    config = UpConfig.from_environment()
    if stack.running():
        raise SystemExit(f"this stack already runs ({', '.join(stack.running())}): run `make down` first")
    try:
        stack.start_server()
        made = stack.configure(
            config.notify,
            rate_per_s=config.rate_per_s,
            concurrency=config.concurrency,
            spending_active=config.spending_active,
        )
        stack.start_worker()
    except BaseException:
        stack.down()  # leave nothing half-started behind
        raise
    print(f"Prefect UI: {stack.ui_url}")
    print(f"work pool {POOL!r} with one process worker; {len(made['deployments'])} deployments:")
    print("\n".join(deployment_lines(made["deployments"])))
    print(
        "failure notifications: "
        + (
            ", ".join(made["automations"])
            if made["automations"]
            else "none (set NOTIFY_WEBHOOK_URL or SLACK_WEBHOOK_URL)"
        )
    )
    print(f"export PREFECT_API_URL={stack.api_url}   # to use the prefect CLI against it; `make down` stops it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
