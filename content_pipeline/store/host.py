"""Who holds something: host name and process id, and whether that process is still alive."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """True when a process with this pid runs on this host. A zombie (killed, and never reaped by a parent
    such as a container's PID 1) is dead: it runs nothing and holds nothing, though signal 0 still finds it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return _state(pid) not in ("Z", "X")


def _state(pid: int) -> str:
    """The process's state letter from /proc (R, S, D, Z, ...); "X" when it vanished since, "" without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "X" if Path("/proc/self").exists() else ""
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()  # the command name, in parentheses, may hold spaces
    return fields[0] if fields else ""


@dataclass(frozen=True)
class Holder:
    """The process that holds a lease or a claim."""

    host: str
    pid: int
    run_id: str

    @classmethod
    def me(cls, run_id: str) -> Holder:
        return cls(this_host(), os.getpid(), run_id)

    def gone(self) -> bool:
        """True when the holder is known dead: same host and its process no longer exists (a holder with no
        process, pid 0, is judged by its expiry alone)."""
        return self.pid > 0 and self.host == this_host() and not pid_alive(self.pid)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host})"
