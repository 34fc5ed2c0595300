"""Test hosts on one machine (as root): network namespaces with hostnames of their own, on a bridge."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from content_pipeline.store.host import pid_alive

PREFIX = "cpt"  # every namespace, bridge and link of these hosts starts with it (interface names: 15 chars)
OWNERS = Path("/run/content-pipeline-test-hosts")  # <session>.pid: which process owns a session's hosts
KILL_S = 10.0  # bound on the wait for a killed host's processes to be gone


def missing() -> str | None:
    """Why test hosts cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs this as root)"
    for tool in ("ip", "unshare", "hostname"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (iproute2 / util-linux / hostname)"
    return None


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def dead(pid: int) -> bool:
    """True when no process `pid` runs: none exists, or only its zombie is left (whose parent died too,
    so it waits for init to reap it, which here can take seconds): the product's own rule."""
    return not pid_alive(pid)


@dataclass(frozen=True)
class Host:
    """One test host: a network namespace, a hostname of its own (a UTS namespace per process tree) and an
    address on the bridge."""

    hostname: str
    netns: str
    address: str

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` run on this host: in its network namespace, under its hostname (exec'd, same pid)."""
        set_name = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "--", "sh", "-c", set_name, self.hostname, *argv]

    def pids(self) -> list[int]:
        """Every process in this host's network namespace (the pid namespace is the machine's)."""
        return [int(p) for p in ip("netns", "pids", self.netns, check=False).split()]

    def kill(self) -> list[int]:
        """SIGKILL everything on this host, as a power cut would; returns the pids killed."""
        killed: list[int] = []
        deadline = time.monotonic() + KILL_S
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):  # ours: reap it, or it lingers as a zombie
                    os.waitpid(pid, os.WNOHANG)
                killed.append(pid)
            time.sleep(0.1)
        if self.pids() or not all(dead(pid) for pid in killed):
            raise RuntimeError(f"host {self.hostname}: processes {self.pids()} survived SIGKILL for {KILL_S:.0f}s")
        return sorted(set(killed))


@dataclass
class Network:
    """A bridge on the machine's own namespace and the hosts linked to it by veth pairs."""

    session: str
    subnet: ipaddress.IPv4Network
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.session}br"

    @property
    def bridge_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    def up(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.bridge_ip}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, hostname: str) -> Host:
        n = len(self.hosts) + 1
        host = Host(hostname, f"{PREFIX}{self.session}-{n}", str(self.subnet.network_address + 1 + n))
        outside, inside = f"{PREFIX}{self.session}v{n}", f"{PREFIX}{self.session}p{n}"
        ip("netns", "add", host.netns)
        self.hosts.append(host)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", host.netns)
        ip("link", "set", outside, "master", self.bridge)
        ip("link", "set", outside, "up")
        for args in (
            ("link", "set", "lo", "up"),
            ("addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", inside),
            ("link", "set", inside, "up"),
        ):
            ip("netns", "exec", host.netns, "ip", *args)
        return host

    def close(self) -> None:
        """Kill what still runs on the hosts, delete their namespaces (their veth pairs go with them) and
        the bridge; every step is tried, whatever failed before it."""
        for n, host in enumerate(self.hosts, 1):
            with contextlib.suppress(Exception):
                host.kill()
            ip("link", "del", f"{PREFIX}{self.session}v{n}", check=False)  # both ends, now (not when the
            ip("netns", "del", host.netns, check=False)  # kernel gets round to destroying the namespace)
        ip("link", "del", self.bridge, check=False)
        (OWNERS / f"{self.session}.pid").unlink(missing_ok=True)


def _owner_alive(session: str) -> bool:
    try:
        pid = int((OWNERS / f"{session}.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def remove_stale() -> list[str]:
    """Delete the namespaces and links of earlier sessions whose process is gone (a crashed run's)."""
    removed = []
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX) and not _owner_alive(name[len(PREFIX) :].split("-")[0]):
            for pid in ip("netns", "pids", name, check=False).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", name, check=False)
            removed.append(name)
    for line in ip("-o", "link", "show", check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(PREFIX) and len(name) > len(PREFIX) + 6 and not _owner_alive(name[len(PREFIX) :][:6]):
            ip("link", "del", name, check=False)
            removed.append(name)
    for owner in OWNERS.glob("*.pid") if OWNERS.exists() else []:
        if not _owner_alive(owner.stem):
            owner.unlink(missing_ok=True)
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no route of this machine covers yet."""
    routes = [line.split()[0] for line in ip("-4", "route", "show").splitlines() if line.split()]
    taken = [ipaddress.ip_network(r, strict=False) for r in routes if r[0].isdigit()]
    for _ in range(100):
        subnet = ipaddress.ip_network(f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(subnet.overlaps(t) for t in taken):
            return subnet
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test hosts")


@contextlib.contextmanager
def network(hostnames: list[str]) -> Iterator[Network]:
    """A bridge and one host per name, unique to this session; all of it removed at the end, even on failure."""
    remove_stale()
    session = uuid.uuid4().hex[:6]
    net = Network(session, _free_subnet())
    try:
        OWNERS.mkdir(parents=True, exist_ok=True)
        (OWNERS / f"{session}.pid").write_text(str(os.getpid()))
        net.up()
        for name in hostnames:
            net.add_host(name)
        yield net
    finally:
        net.close()
