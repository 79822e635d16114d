"""The trusted harness processes a front server keeps: each runs one program's test after another.

Forking a harness for every program cost as much CPU as the program itself (page tables copied at
fork and torn down at exit, copy-on-write faults in between), so the front server forks a few workers
once and hands each a job: the program's channel (an fd) and what to send and run over it. A worker
sends the program its code and, in `harness` mode, runs the task's signature and test script in fresh
globals against it (`harness.run_test`); in `python` mode it waits for the program to report its end.

What a worker runs is trusted (the benchmark's own test code); what it receives from an answer is
plain data (`wire`), which cannot run code, so nothing an answer sends can act on a later test. A
worker is retired — it exits and the front server forks another — after `MAX_JOBS` tests, when its
memory grew by more than `MAX_GROWTH` (a huge value an answer returned), or when a test overran its
backstop (the front server kills it).
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import socket
import time
import traceback

from proctor_jobs.oracle import harness, linux, wire

MAX_JOBS = 1000
MAX_GROWTH = 256 * 1024 * 1024


class HarnessWorker:
    """The front server's handle on one worker process."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            mine.close()
            _worker_main(theirs)
        theirs.close()
        self.pid, self.sock = pid, mine
        self.request_id: int | None = None
        self.backstop = 0.0

    def fileno(self) -> int:
        return self.sock.fileno()

    def assign(self, request_id: int, job: dict, channel: int, backstop: float) -> None:
        """Give the worker a program: its channel travels with the first byte, the job follows."""
        socket.send_fds(self.sock, [b"j"], [channel])
        wire.send_frame(self.sock.fileno(), job)
        self.request_id, self.backstop = request_id, backstop

    def read_reply(self) -> dict | None:
        """`{"verdict": ..., "retiring": bool}` for the job in hand; None when the worker is gone."""
        try:
            return wire.recv_frame(self.sock.fileno())
        except (wire.WireError, OSError):
            return None

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def job_for(req: dict) -> dict:
    """What a worker needs of a request (its code, test and time, not its limits or files)."""
    entry = req.get("entry") if req["mode"] == "harness" else None
    return {
        "mode": req["mode"],
        "code": req["code"],
        "filename": req.get("filename", "<solution>"),
        "entry": entry,
        "signature": req.get("signature", ""),
        "test": req.get("test", ""),
        "wall": float(req["limits"]["wall_seconds"]),
    }


def run_job(job: dict, channel: int) -> dict:
    """Send the program its code; in harness mode run the test against it. Returns the verdict."""
    deadline = time.monotonic() + job["wall"] + 1.0
    message = {"code": job["code"], "filename": job["filename"], "entry": job["entry"]}
    try:
        wire.send_frame(channel, message)
    except OSError:
        pass  # the program is already gone; the verdict below says so
    if job["mode"] == "harness":
        return harness.run_test(channel, job["signature"], job["test"], job["entry"], deadline)
    return _await_program(channel, deadline)


def _await_program(channel: int, deadline: float) -> dict:
    """Python mode: the program reports `done` when it ran to its last line (it could also write that
    itself — python mode decides nothing about a benchmark's score; `harness` mode does)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([channel], [], [], remaining)[0]:
        return {"event": "timeout"}
    try:
        return wire.recv_frame(channel) or {"event": "gone"}
    except (wire.WireError, OSError):
        return {"event": "gone"}


def _worker_main(sock: socket.socket) -> None:
    """In the worker: nothing of the front server's but stderr and this socket; serve jobs. Never returns."""
    code = 0
    try:
        linux.set_parent_death_signal()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        linux.close_fds_except({0, 1, 2, sock.fileno()})
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        start = _rss()
        for done in range(1, MAX_JOBS + 1):
            data, fds, _, _ = socket.recv_fds(sock, 1, 1)
            if not data or len(fds) != 1:
                break  # the front server closed us (or broke the protocol): nothing left to do
            channel = fds[0]
            try:
                job = wire.recv_frame(sock.fileno())
                verdict = run_job(job, channel) if job else {}
            finally:
                os.close(channel)
            retiring = done == MAX_JOBS or _rss() - start > MAX_GROWTH
            wire.send_frame(sock.fileno(), {"verdict": verdict, "retiring": retiring})
            if retiring:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass  # the front server is gone (the worker stopped): nobody is left to tell
    except BaseException:
        code = 70
        with contextlib.suppress(Exception):
            os.write(2, f"sandbox harness failed:\n{traceback.format_exc()}".encode())
    os._exit(code)


def _rss() -> int:
    """The worker's peak resident size (from the kernel's accounting: no /proc needed)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
