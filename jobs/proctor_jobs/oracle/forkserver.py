"""The sandbox fork server: a pre-warmed Python process that forks one confined child per program.

Why a fork server: starting a fresh interpreter (and importing numpy) per sample costs far more than
the sample itself. The server imports common modules once, then `fork()`s; each child confines
itself before touching untrusted code. The server never runs untrusted code, and the worker process
never forks from anything that has.

Two modes:

- ``shared`` (the fast path, for programs that need only a scratch directory): the server enters
  its namespaces once at start-up — it becomes PID 1 of a new PID namespace with no network and a
  read-only filesystem except its base directory — and per program forks one child that drops to a
  uid of its own (root tier), applies resource limits and runs. One fork per program.
- ``isolated`` (for commands with their own working directory or extra readable paths, e.g. an
  artifact's evaluator): per program a supervisor child unshares fresh namespaces and forks the
  program as PID 1 of them, so killing it kills everything it spawned.

Protocol: one JSON object per line on stdin (requests) and stdout (responses), matched by `id`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import secrets
import select
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from proctor_jobs.oracle import isolation, linux

_TAIL = 16 * 1024
_UID_SLOTS = 256


def main() -> None:
    linux.set_parent_death_signal()
    base = Path(sys.argv[1])
    preload = [m for m in (sys.argv[2].split(",") if len(sys.argv) > 2 else []) if m]
    mode = sys.argv[3] if len(sys.argv) > 3 else "isolated"
    hide = json.loads(sys.argv[4]) if len(sys.argv) > 4 else []
    # Threads do not survive fork(); BLAS pools must stay single-threaded in a forking server.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in preload:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    base.mkdir(parents=True, exist_ok=True)
    tier = isolation.probe_tier()
    if mode == "shared":
        tier = _enter_shared_namespaces(tier, base, hide)
        isolation.install_base_env()
        SharedServer(base, tier).serve()
    else:
        IsolatedServer(base, tier, hide).serve()


def _enter_shared_namespaces(tier: str, base: Path, hide: list[str]) -> str:
    """Confine the server once: new namespaces, then become their PID 1. Returns the tier reached."""
    if tier == "none":
        return tier
    try:
        isolation.enter_namespaces(tier, network=False, strict=True)
    except OSError:
        return "none"
    pid = os.fork()
    if pid > 0:
        # The original process only waits: the PID-1 child serves the same stdin/stdout.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    linux.set_parent_death_signal()
    isolation.confine_filesystem(writable=[str(base)], readable=[], hide=hide, expose=tier == "root")
    os.chmod(base, 0o711)  # children with their own uids traverse to their scratch dirs, not list
    return tier


class _Protocol:
    """Request reading and reply writing shared by both servers."""

    def __init__(self, base: Path, tier: str) -> None:
        self.base, self.tier = base, tier
        self.counter = 0
        self._buffer = b""
        self.stdin = sys.stdin.fileno()

    def send(self, message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    def read_requests(self) -> list[dict] | None:
        chunk = os.read(self.stdin, 1 << 20)
        if not chunk:
            return None  # the worker went away
        self._buffer += chunk
        requests = []
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.strip():
                requests.append(json.loads(line))
        return requests

    def workdir(self) -> Path:
        self.counter += 1
        return self.base / f"r{os.getpid()}-{self.counter}"

    def finish_files(self, req: dict, paths: dict, result: dict) -> dict:
        result["id"] = req["id"]
        result["tier"] = self.tier
        if req.get("keep"):
            result["scratch"] = str(paths["scratch"])
        else:
            shutil.rmtree(paths["root"], ignore_errors=True)
        return result


@dataclass
class _Child:
    req: dict
    paths: dict
    status_fd: int
    nonce: bytes
    uid: int
    slot: int
    started: float
    deadline: float
    timed_out: bool = False
    report: bytes = field(default=b"")


class SharedServer(_Protocol):
    """The fast path: already confined; one fork per program."""

    def __init__(self, base: Path, tier: str) -> None:
        super().__init__(base, tier)
        self.children: dict[int, _Child] = {}
        # A random block of uids, so two servers on one machine never share a uid (process limits
        # count per uid, machine-wide).
        self.uid_base = 200000 + random.randrange(0, 3000) * _UID_SLOTS
        self.free_slots = list(range(_UID_SLOTS))
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        self.wake_r = wake_r
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        self.send({"id": None, "ready": True, "tier": tier, "mode": "shared"})

    def serve(self) -> None:
        while True:
            timeout = 0.5
            if self.children:
                timeout = max(
                    0.0, min(0.5, min(c.deadline for c in self.children.values()) - time.monotonic())
                )
            fds = [self.stdin, self.wake_r] + [c.status_fd for c in self.children.values()]
            ready, _, _ = select.select(fds, [], [], timeout)
            for fd in ready:
                if fd == self.stdin:
                    requests = self.read_requests()
                    if requests is None:
                        self._kill_all()
                        return
                    for req in requests:
                        self._start(req)
                elif fd == self.wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                else:
                    self._drain(fd)
            self._enforce_deadlines()
            self._reap()

    def _start(self, req: dict) -> None:
        if req.get("cwd") or req.get("readable") or req.get("writable"):
            self.send(
                {"id": req["id"], "status": "crashed", "error": "this server runs scratch-only programs"}
            )
            return
        if not self.free_slots:
            self.send({"id": req["id"], "status": "crashed", "error": "too many programs in flight"})
            return
        slot = self.free_slots.pop(0)
        uid = self.uid_base + slot
        try:
            paths = isolation.prepare_workdir(self.workdir(), req, self.tier, uid)
        except Exception as exc:
            self.free_slots.append(slot)
            self.send({"id": req["id"], "status": "crashed", "error": f"preparing the sandbox: {exc!r}"})
            return
        status_r, status_w = os.pipe()
        stdout = os.open(paths["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        stderr = os.open(paths["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        nonce = secrets.token_hex(16).encode()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(status_r)
            _become_program(req, paths, self.tier, stdout, stderr, status_w, nonce, filesystem=False)
        os.close(status_w)
        os.close(stdout)
        os.close(stderr)
        os.set_blocking(status_r, False)
        deadline = started + float(req["limits"]["wall_seconds"])
        self.children[pid] = _Child(req, paths, status_r, nonce, uid, slot, started, deadline)

    def _drain(self, fd: int) -> None:
        for child in self.children.values():
            if child.status_fd == fd:
                with contextlib.suppress(BlockingIOError):
                    child.report += os.read(fd, 65536)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for pid, child in self.children.items():
            if not child.timed_out and now >= child.deadline:
                child.timed_out = True
                for kill in (
                    lambda p=pid: os.kill(p, signal.SIGKILL),
                    lambda p=pid: os.killpg(p, signal.SIGKILL),
                ):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill()

    def _reap(self) -> None:
        """Collect exited programs; as PID 1 also reap orphans their descendants left behind."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            if info.si_pid in self.children:
                self._finish(info.si_pid)
            else:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(info.si_pid, 0)

    def _finish(self, pid: int) -> None:
        _, status, usage = os.wait4(pid, 0)
        child = self.children.pop(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # whatever it left in its process group
        if self.tier == "root" and (child.timed_out or os.WIFSIGNALED(status)):
            isolation.kill_uid(child.uid)  # and anything that escaped the group
        with contextlib.suppress(BlockingIOError, OSError):
            child.report += os.read(child.status_fd, 65536)
        os.close(child.status_fd)
        self.free_slots.append(child.slot)
        result = _result(
            child.req,
            child.paths,
            status,
            usage,
            child.report,
            child.nonce,
            child.timed_out,
            time.monotonic() - child.started,
            self.tier,
        )
        self.send(self.finish_files(child.req, child.paths, result))

    def _kill_all(self) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


class IsolatedServer(_Protocol):
    """Fresh namespaces per program, set up by a supervisor child (see the module docstring)."""

    def __init__(self, base: Path, tier: str, hide: list[str]) -> None:
        super().__init__(base, tier)
        self.hide = hide
        # result pipe fd -> (request, supervisor pid, backstop deadline, paths, bytes so far)
        self.running: dict[int, list] = {}
        self.send({"id": None, "ready": True, "tier": tier, "mode": "isolated"})

    def serve(self) -> None:
        while True:
            ready, _, _ = select.select([self.stdin, *self.running], [], [], 0.2)
            for fd in ready:
                if fd == self.stdin:
                    requests = self.read_requests()
                    if requests is None:
                        self._kill_all()
                        return
                    for req in requests:
                        self._start({**req, "hide": [*self.hide, *req.get("hide", [])]})
                else:
                    self._read(fd)
            now = time.monotonic()
            for entry in list(self.running.values()):
                if now > entry[2]:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(entry[1], signal.SIGKILL)

    def _start(self, req: dict) -> None:
        uid = 200000 + random.randrange(0, 3000 * _UID_SLOTS)
        try:
            paths = isolation.prepare_workdir(self.workdir(), req, self.tier, uid)
        except Exception as exc:
            self.send({"id": req["id"], "status": "crashed", "error": f"preparing the sandbox: {exc!r}"})
            return
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            linux.set_parent_death_signal()  # a supervisor never outlives its server
            code = 70
            try:
                code = _supervise(req, paths, write_fd, self.tier)
            except BaseException:
                with contextlib.suppress(Exception):
                    os.write(
                        write_fd, json.dumps({"status": "crashed", "error": traceback.format_exc()}).encode()
                    )
            os._exit(code)
        os.close(write_fd)
        backstop = time.monotonic() + float(req["limits"]["wall_seconds"]) + 15.0
        self.running[read_fd] = [req, pid, backstop, paths, b""]

    def _read(self, fd: int) -> None:
        entry = self.running[fd]
        chunk = os.read(fd, 1 << 20)
        if chunk:
            entry[4] += chunk
            return
        req, pid, _, paths, data = self.running.pop(fd)
        os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        try:
            result = json.loads(data or b"{}")
        except ValueError:
            result = {}
        if not result:
            result = {"status": "crashed", "error": "the sandbox supervisor exited without a report"}
        self.send(self.finish_files(req, paths, result))

    def _kill_all(self) -> None:
        for entry in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(entry[1], signal.SIGKILL)


def _supervise(req: dict, paths: dict, report_fd: int, tier: str) -> int:
    """Runs in the supervisor: confine, start the program, enforce the deadline, report."""
    os.setsid()
    limits = req["limits"]
    # Open the output files before entering a new mount namespace: a file opened through the new
    # namespace's root mount would keep that mount busy and block making it read-only.
    stdout = os.open(paths["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    stderr = os.open(paths["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    tier = isolation.enter_namespaces(tier, network=bool(limits.get("network")))
    nonce = secrets.token_hex(16).encode()
    status_r, status_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(status_r)
        _become_program(req, paths, tier, stdout, stderr, status_w, nonce, filesystem=True)
    os.close(status_w)
    os.close(stdout)
    os.close(stderr)
    timed_out = False
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], float(limits["wall_seconds"]))
    if not ready:
        timed_out = True
    # With a PID namespace, killing its PID 1 kills every process in it; otherwise kill the group.
    for kill in (lambda: os.kill(pid, signal.SIGKILL), lambda: os.killpg(pid, signal.SIGKILL)):
        if timed_out or tier == "none":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill()
    _, wait_status, usage = os.wait4(pid, 0)
    os.close(pidfd)
    report = _read_available(status_r)
    result = _result(
        req, paths, wait_status, usage, report, nonce, timed_out, time.monotonic() - started, tier
    )
    os.write(report_fd, json.dumps(result).encode())
    return 0


def _become_program(req, paths, tier, stdout, stderr, status_w, nonce, filesystem: bool) -> None:
    """In the freshly forked child: wire up output, confine, run. Never returns."""
    try:
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        if not filesystem:
            os.setsid()
        isolation.confine_program(req, paths, tier, filesystem=filesystem)
        _run_program(req, status_w, nonce)
    except BaseException:
        with contextlib.suppress(Exception):
            os.write(2, f"sandbox setup failed:\n{traceback.format_exc()}".encode())
        os._exit(71)
    os._exit(0)


def _run_program(req: dict, status_fd: int, nonce: bytes) -> None:
    """Runs as the confined program. Python mode executes the source in this pre-warmed interpreter."""
    if req["mode"] == "exec":
        argv = req["argv"]
        os.execvpe(argv[0], argv, os.environ)
    code = req["code"]
    try:
        exec(compile(code, req.get("filename", "<solution>"), "exec"), {"__name__": "__main__"})
    except BaseException as exc:  # the program's own failure: report it like the original harness
        traceback.print_exc()
        message = json.dumps({"type": type(exc).__name__, "message": str(exc)[:2000]})
        os.write(status_fd, b"E" + message.encode())
        sys.stdout.flush()
        os._exit(1)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os.write(status_fd, nonce)
    os._exit(0)


def _result(
    req, paths, wait_status, usage, report: bytes, nonce: bytes, timed_out: bool, duration: float, tier
):
    limits = req["limits"]
    result = {
        "status": "timeout" if timed_out else "exited",
        "exit_code": os.waitstatus_to_exitcode(wait_status) if os.WIFEXITED(wait_status) else None,
        "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
        "completed": report.startswith(nonce),
        "exception": _parse_exception(report),
        "duration_s": round(duration, 4),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stdout": tail_file(paths["stdout"]),
        "stderr": tail_file(paths["stderr"]),
        "isolation": isolation.describe(tier, network=bool(limits.get("network"))),
    }
    for name in req.get("collect", []):
        result.setdefault("collected", {})[name] = (paths["scratch"] / name).is_file()
    return result


def _read_available(fd: int) -> bytes:
    """What the program wrote to its status pipe (it has exited; a descendant may hold the pipe open)."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError, OSError):
        while chunk := os.read(fd, 65536):
            data += chunk
    os.close(fd)
    return data


def _parse_exception(report: bytes) -> dict | None:
    if report.startswith(b"E"):
        try:
            # The first report is the program's own: a fork bomb's children inherit the pipe and
            # append theirs ("E{...}E{...}"), which must not garble it.
            exception, _ = json.JSONDecoder().raw_decode(report[1:].decode(errors="replace"))
            return exception
        except ValueError:
            return {"type": "unknown", "message": report[1:200].decode(errors="replace")}
    return None


def tail_file(path: Path) -> str:
    """The start and the end of a possibly huge output file (the middle is what nobody reads)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > _TAIL:
                head = f.read(_TAIL // 4)
                f.seek(size - 3 * _TAIL // 4)
                return (head + b"\n[... truncated ...]\n" + f.read()).decode(errors="replace")
            return f.read().decode(errors="replace")
    except OSError:
        return ""


if __name__ == "__main__":
    main()
