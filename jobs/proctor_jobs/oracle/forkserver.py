"""The sandbox fork server: a pre-warmed Python process that forks one confined child per program.

Why a fork server: starting a fresh interpreter (and importing numpy) per sample costs far more than
the sample itself. The server imports common modules once, then `fork()`s; each child confines
itself before touching untrusted code. The server itself never runs untrusted code, and the worker
process never forks from anything that has.

Per request the process tree is:

    server ──fork──▶ supervisor (new session; unshares namespaces) ──fork──▶ program (PID 1 of its
    own PID namespace when available)

The supervisor enforces the wall-clock deadline and reports; killing the program kills everything
it spawned because it is PID 1 of its namespace (or, without namespaces, the leader of its process
group). See `isolation.py` for the confinement itself.

Protocol: one JSON object per line on stdin (requests) and stdout (responses), matched by `id`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import secrets
import select
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from proctor_jobs.oracle import isolation, linux

_TAIL = 16 * 1024


def main() -> None:
    linux.set_parent_death_signal()
    base = Path(sys.argv[1])
    preload = [m for m in (sys.argv[2].split(",") if len(sys.argv) > 2 else []) if m]
    # Threads do not survive fork(); BLAS pools must stay single-threaded in a forking server.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in preload:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    base.mkdir(parents=True, exist_ok=True)
    Server(base).serve()


class Server:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.tier = isolation.probe_tier()
        # result pipe fd -> (request, supervisor pid, backstop deadline, paths)
        self.running: dict[int, tuple[dict, int, float, dict]] = {}
        self.out = sys.stdout
        self.counter = 0
        self._send({"id": None, "ready": True, "tier": self.tier})

    def _send(self, message: dict) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def serve(self) -> None:
        stdin = sys.stdin.fileno()
        buffer = b""
        while True:
            fds = [stdin, *self.running]
            ready, _, _ = select.select(fds, [], [], 0.2)
            for fd in ready:
                if fd == stdin:
                    chunk = os.read(stdin, 1 << 20)
                    if not chunk:  # the worker went away: stop every child and leave
                        self._kill_all()
                        return
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            self._start(json.loads(line))
                else:
                    self._finish(fd)
            self._enforce_backstop()

    def _start(self, req: dict) -> None:
        self.counter += 1
        workdir = self.base / f"r{os.getpid()}-{self.counter}"
        try:
            paths = isolation.prepare_workdir(workdir, req, self.tier, slot=self.counter)
        except Exception as exc:
            self._send({"id": req["id"], "status": "crashed", "error": f"preparing the sandbox: {exc!r}"})
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
        wall = float(req["limits"]["wall_seconds"])
        self.running[read_fd] = (req, pid, time.monotonic() + wall + 15.0, paths)

    def _finish(self, fd: int) -> None:
        req, pid, _, paths = self.running.pop(fd)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        try:
            result = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            result = {}
        if not result:
            result = {"status": "crashed", "error": "the sandbox supervisor exited without a report"}
        result["id"] = req["id"]
        result["tier"] = self.tier
        if req.get("keep"):
            result["scratch"] = str(paths["scratch"])
        else:
            shutil.rmtree(paths["root"], ignore_errors=True)
        self._send(result)

    def _enforce_backstop(self) -> None:
        now = time.monotonic()
        for _fd, (_req, pid, deadline, _paths) in list(self.running.items()):
            if now > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)

    def _kill_all(self) -> None:
        for _, pid, _, _ in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


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
        try:
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            isolation.confine_program(req, paths, tier)
            _run_program(req, status_w, nonce)
        except BaseException:
            with contextlib.suppress(Exception):
                os.write(2, f"sandbox setup failed:\n{traceback.format_exc()}".encode())
            os._exit(71)
        os._exit(0)
    os.close(status_w)
    os.close(stdout)
    os.close(stderr)
    wall = float(limits["wall_seconds"])
    timed_out = False
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], wall)
    if not ready:
        timed_out = True
        _kill_tree(pid, tier)
    _, wait_status, usage = os.wait4(pid, 0)
    duration = time.monotonic() - started
    os.close(pidfd)
    if tier == "none":
        _kill_tree(pid, tier)  # reap stragglers of a program that had no PID namespace
    report = _read_all(status_r)
    result = {
        "status": "timeout" if timed_out else "exited",
        "exit_code": os.waitstatus_to_exitcode(wait_status) if os.WIFEXITED(wait_status) else None,
        "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
        "completed": report.startswith(nonce),
        "exception": _parse_exception(report, nonce),
        "duration_s": round(duration, 4),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stdout": _tail(paths["stdout"]),
        "stderr": _tail(paths["stderr"]),
        "isolation": isolation.describe(tier, network=bool(limits.get("network"))),
    }
    for name in req.get("collect", []):
        result.setdefault("collected", {})[name] = (paths["scratch"] / name).is_file()
    os.write(report_fd, json.dumps(result).encode())
    return 0


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


def _kill_tree(pid: int, tier: str) -> None:
    # With a PID namespace, killing its PID 1 kills every process in it; otherwise the group.
    for target in (lambda: os.kill(pid, signal.SIGKILL), lambda: os.killpg(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data


def _parse_exception(report: bytes, nonce: bytes) -> dict | None:
    if report.startswith(b"E"):
        try:
            return json.loads(report[1:])
        except ValueError:
            return {"type": "unknown", "message": report[1:200].decode(errors="replace")}
    return None


def _tail(path: Path) -> str:
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
