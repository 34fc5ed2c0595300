"""`make up-cluster`: the team shape on one machine: Prefect on PostgreSQL, SeaweedFS as S3, two workers."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cli.ports import free_ports
from devstack.config import UpConfig, deployment_lines, stopped_line
from devstack.seaweed import PORTS, s3_endpoint, wait_ready, weed_binary, weed_command, weed_env
from devstack.stack import POOL, ROOT, Stack

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
DB = "prefect"  # the database, and its owner's role
BUCKET = "content-pipeline"
PG_START_S = 60.0  # bound on the wait for PostgreSQL to accept connections


def db_account() -> tuple[int, int] | None:
    """The (uid, gid) PostgreSQL runs as: as root an unprivileged account (it refuses to run as root),
    Debian's `postgres` when it exists, else `nobody`; None when not root (it runs as the current user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise SystemExit("running as root, and neither a `postgres` nor a `nobody` account exists for PostgreSQL")


def as_account(account: tuple[int, int] | None, args: list[str]) -> list[str]:
    """`args` run as `account` (setpriv execs in place, so the pid kept is the server's own)."""
    if account is None:
        return args
    uid, gid = account
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *args]


class Cluster:
    """One stack under `state_dir` in the team's shape; `host` is where its server and store listen (the
    address workers on other hosts reach them at)."""

    def __init__(self, state_dir: Path, host: str = "127.0.0.1", port: int = 4200, pg_port: int = 0) -> None:
        self.stack = Stack(state_dir, port, host=host)
        self.state_dir = self.stack.state_dir
        self.host = host
        self.pg_port = pg_port or free_ports(1)[0]
        self.config_path = self.state_dir / "cluster.json"
        self.s3_url = ""  # the S3 endpoint, once the store runs
        self.store_url = f"s3://{BUCKET}/store"

    @property
    def pg_dir(self) -> Path:
        return self.state_dir / "postgres"

    def db_url(self) -> str:
        password = (self.pg_dir / "password").read_text().strip()
        return f"postgresql+asyncpg://{DB}:{password}@127.0.0.1:{self.pg_port}/{DB}"

    def _psql(self, sql: str, database: str = "postgres") -> str:
        """One statement through psql over TCP, as the database's owner; returns its unaligned output."""
        password = (self.pg_dir / "password").read_text().strip()
        args = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", DB, "-d", database]
        done = subprocess.run(
            [*args, "-v", "ON_ERROR_STOP=1", "-tAc", sql],
            env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def query(self, sql: str) -> str:
        """A query on Prefect's own database (what the server stored)."""
        return self._psql(sql, DB)

    def _initdb(self, account: tuple[int, int] | None) -> None:
        """A data folder of the stack's own, owned by the account PostgreSQL runs as, password auth only."""
        data = self.pg_dir / "data"
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        password = self.pg_dir / "password"
        password.write_text(secrets.token_urlsafe(18) + "\n")
        password.chmod(0o600)
        if account is not None:
            for path in (self.pg_dir, data, password):
                os.chown(path, *account)
        data.chmod(0o700)
        args = [str(PG_BIN / "initdb"), "-D", str(data), "-U", DB, f"--pwfile={password}"]
        args += ["--auth=scram-sha-256", "--no-locale", "-E", "UTF8"]
        done = subprocess.run(as_account(account, args), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)  # a half-made folder would stop the next try
            hint = " (can that account reach the folder? every parent must be searchable)" if account else ""
            raise SystemExit(f"initdb failed{hint}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")

    def start_postgres(self) -> None:
        """PostgreSQL on a loopback port, no unix socket, and Prefect's database in it."""
        if not (PG_BIN / "postgres").exists():
            raise SystemExit(f"{PG_BIN}/postgres is missing: install Debian's postgresql-15 (or set PG_BIN)")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        account = db_account()
        self._initdb(account)
        args = [str(PG_BIN / "postgres"), "-D", str(self.pg_dir / "data"), "-p", str(self.pg_port)]
        args += ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"]
        self.stack.spawn("postgres", as_account(account, args))
        deadline = time.monotonic() + PG_START_S
        while True:
            try:
                self._psql("SELECT 1")
                break
            except RuntimeError as error:
                if "postgres" not in self.stack.running() or time.monotonic() > deadline:
                    log = (self.state_dir / "postgres.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"PostgreSQL did not start: {error}\n{log}") from None
                time.sleep(0.3)
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'") != "1":
            self._psql(f"CREATE DATABASE {DB} OWNER {DB}")

    def start_seaweed(self) -> None:
        """SeaweedFS with its S3 gateway on `host`, its data under the stack's folder, and the bucket made."""
        weed = weed_binary()
        data = self.state_dir / "seaweed"
        data.mkdir(parents=True, exist_ok=True)
        ports = free_ports(PORTS, self.host)
        self.stack.spawn("seaweed", weed_command(weed, str(data), ports, self.host), env=weed_env)
        self.s3_url = s3_endpoint(ports, self.host)
        wait_ready(self.s3_url, BUCKET, lambda: "seaweed" in self.stack.running(), self.state_dir / "seaweed.log")

    def start_server(self) -> None:
        """The Prefect server on PostgreSQL (through asyncpg), listening on `host`."""
        env = {"PREFECT_API_DATABASE_CONNECTION_URL": self.db_url()}
        self.stack.start_server(extra_env=env)

    def worker_env(self) -> dict[str, str]:
        """What every worker (and the flow runs it starts) needs to reach the shared store."""
        return {
            "STORE_URL": self.store_url,
            "AWS_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": "content-pipeline",
            "AWS_SECRET_ACCESS_KEY": "content-pipeline",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start_worker(
        self,
        name: str,
        extra_env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
        limit: int | None = None,
    ) -> int:
        """A process worker on the one pool, on the shared store; `prefix` puts it on another host."""
        return self.stack.start_worker(name, {**self.worker_env(), **(extra_env or {})}, prefix, limit)

    def save(self) -> None:
        config = {"api_url": self.stack.api_url, "s3": self.s3_url, "store_url": self.store_url}
        config["postgres"] = f"127.0.0.1:{self.pg_port}/{DB}"
        self.config_path.write_text(json.dumps(config, indent=2))

    def up(
        self, notify: dict[str, str], rate_per_s: float, concurrency: int, spending_active: bool, workers: int = 2
    ) -> dict[str, Any]:
        """Everything, in order; on any failure whatever started is stopped again. Returns what `configure`
        made: the automations and the deployments with their schedules."""
        if self.stack.running():
            raise SystemExit(f"this cluster already runs ({', '.join(self.stack.running())}): run `make down` first")
        try:
            self.start_postgres()
            self.start_seaweed()
            self.start_server()
            made = self.stack.configure(notify, rate_per_s, concurrency, spending_active)
            for n in range(1, workers + 1):
                self.start_worker(f"worker-{n}")
            self.save()
        except BaseException:
            self.down()
            raise
        return made

    def down(self) -> list[str]:
        """Stop exactly what this cluster started: workers, the server, then PostgreSQL and SeaweedFS."""
        self.config_path.unlink(missing_ok=True)
        return self.stack.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.cluster")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", default=str(ROOT / ".prefect-cluster"))
    parser.add_argument("--host", default=os.environ.get("CLUSTER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PREFECT_PORT", "4200")))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("CLUSTER_PG_PORT", "0")))
    args = parser.parse_args(argv)
    cluster = Cluster(Path(args.state_dir), args.host, args.port, args.pg_port)
    if args.command == "down":
        print(stopped_line(" (cluster)", cluster.down()))
        return 0
    config = UpConfig.from_environment()
    made = cluster.up(config.notify, config.rate_per_s, config.concurrency, config.spending_active)
    automations = made["automations"]
    print(f"Prefect UI: {cluster.stack.ui_url} (database: PostgreSQL on 127.0.0.1:{cluster.pg_port}/{DB})")
    print(f"store: {cluster.store_url} on SeaweedFS at {cluster.s3_url}")
    print(f"work pool {POOL!r} with two process workers (worker-1, worker-2); logs and pids in {cluster.state_dir}")
    print(f"{len(made['deployments'])} deployments:")
    print("\n".join(deployment_lines(made["deployments"])))
    print("failure notifications: " + (", ".join(automations) if automations else "none"))
    print(f"export PREFECT_API_URL={cluster.stack.api_url}   # `make down` stops it all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
