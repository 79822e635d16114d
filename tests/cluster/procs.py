"""Starting and stopping the environment's server processes so that none outlives its owner.

Every server runs in its own process group (so a kill reaches anything it forks), is registered for an
`atexit` sweep (so a pytest that errors out still cleans up), and, when its owner asks, gets
PR_SET_PDEATHSIG so the kernel kills it if the owning process dies without running `atexit` (SIGKILL,
OOM, a crashed interpreter). The developer command (`python -m tests.cluster up`) turns the last one
off, because there the servers must outlive the command that started them.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# Resolved once here: looking a symbol up in the child between fork and exec could take a loader
# lock that another thread of the parent held at fork time.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

_live: dict[int, Server] = {}
_live_lock = threading.Lock()


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent thread dies.

    Runs in the child between fork and exec. Note the kernel tracks the *thread* that forked, so
    callers must spawn from a thread that lives as long as the owner (the main thread here).
    """
    _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    There is a window between closing this socket and the server binding it; with ports taken from
    the kernel's ephemeral range that window has not bitten in practice, and a clash fails loudly.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """Whether `pid` names a live (non-zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), or None if there is no such process: with the pid,
    it names one process for good (pids are recycled; this machine's pid_max is only 32768)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def still_ours(pid: int, started: int | None) -> bool:
    """Whether (`pid`, `started`) still names our process, or a process group it left behind: a live
    process with that pid and another start time is someone else's (and so is its group, since the
    kernel never hands out a pid still used as a process-group id)."""
    now = start_time(pid)
    if now is not None:
        return started is None or now == started
    return pgid_alive(pid)


def pid_records(text: str) -> list[tuple[int, int | None]]:
    """`pid [start]` lines (a pid file of the test kubelet) as pairs."""
    records = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit():
            records.append((int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None))
    return records


def pgid_alive(pgid: int) -> bool:
    """Whether any process is left in process group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; look for a live member.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class Server:
    """One server process in its own process group, with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        die_with_parent: bool = True,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.stop_signal = stop_signal
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=set_pdeathsig if die_with_parent else None,
            )
        self.pid = self.proc.pid
        with _live_lock:
            _live[self.pid] = self

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> None:
        """Raise with the log tail if the server has exited (used while waiting for readiness)."""
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with code {self.proc.returncode}; last output "
                f"({self.log_path}):\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 5.0) -> None:
        """Signal the whole process group, wait, then SIGKILL whatever is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, self.stop_signal)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        with _live_lock:
            _live.pop(self.pid, None)

    def detach(self) -> None:
        """Forget the server: it is meant to outlive this Python process (`up`)."""
        with _live_lock:
            _live.pop(self.pid, None)


def kill_group(pgid: int, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Stop a process group this process did not start (the developer command's `down`)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pgid_alive(pgid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def wait_until(
    what: str,
    ready: Callable[[], bool],
    timeout: float,
    servers: Sequence[Server] = (),
    interval: float = 0.05,
) -> None:
    """Poll `ready()` until it holds; fail fast with a log tail if a server dies meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        for server in servers:
            server.check_running()
        try:
            if ready():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {s.name} ({s.log_path}):\n{s.log_tail()}" for s in servers)
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s\n{tails}")
        time.sleep(interval)


@atexit.register
def _stop_all() -> None:
    """Last resort for servers whose owner never called stop()."""
    with _live_lock:
        servers = list(_live.values())
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop(timeout=2)
