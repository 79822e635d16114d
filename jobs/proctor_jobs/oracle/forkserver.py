"""The sandbox fork server: a pre-warmed Python process that forks one confined child per program.

Why a fork server: starting a fresh interpreter (and importing numpy) per sample costs far more than
the sample itself. The server imports common modules once, then `fork()`s; each child confines
itself before touching untrusted code. The server never runs untrusted code, and the worker process
never forks from anything that has.

Two modes:

- ``shared`` (the fast path, for programs that need only a scratch directory): the server enters
  its namespaces once at start-up — it becomes PID 1 of a new PID namespace with no network and a
  read-only filesystem except its base directory — and per program forks one child that drops to a
  uid of its own (root tier), applies resource limits and runs. One fork per program; a front
  server outside the namespaces hands each program's channel to a reused harness worker
  (`harness_pool`) that sends the code and runs the test.
- ``isolated`` (for commands with their own working directory or extra readable paths, e.g. an
  artifact's evaluator): per program a supervisor child unshares fresh namespaces and forks the
  program as PID 1 of them, so killing it kills everything it spawned.

Protocol: one JSON object per line on stdin (requests) and stdout (responses), matched by `id`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import random
import secrets
import select
import shutil
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from proctor_jobs.oracle import candidate, harness_pool, isolation, linux, wire
from proctor_jobs.oracle.harness_pool import HarnessWorker

_TAIL = 16 * 1024
_UID_SLOTS = 256
#: characters of code + test a program may have: its job must fit one wire frame (JSON escapes included)
_MAX_PROGRAM = wire.MAX_FRAME // 2


def main() -> None:
    linux.set_parent_death_signal()
    # The worker stops its servers by closing their stdin; a Ctrl-C meant for it must not interrupt
    # them half-way (and print their tracebacks over its one line).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
    tier = isolation.probe_tier(base.parent / f".probe-{base.name}" if mode == "shared" else None)
    if mode == "shared":
        front, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            front.close()
            _zygote_main(zygote_end, base, tier, hide)
        zygote_end.close()
        # Nothing of this process (tests, verdicts) may be read through /proc/<pid>/mem or ptrace by a
        # program of the same uid. (Only now: a non-dumpable process cannot write its uid_map, which the
        # probe and the zygote need.)
        linux.set_not_dumpable()
        _until_the_worker_leaves(FrontServer(base, front, pid).serve)
    else:
        _until_the_worker_leaves(IsolatedServer(base, tier, hide).serve)


def _freeze_heap() -> None:
    """Before serving forks: move everything loaded so far out of the collector's reach, so a forked
    child's collections never walk (and copy-on-write) the server's heap page by page."""
    gc.collect()
    gc.freeze()


def _until_the_worker_leaves(serve) -> None:
    """Serve; a worker that went away (Ctrl-C, kill) while a reply was on its way is a normal end,
    not a traceback on its terminal."""
    try:
        serve()
    except (BrokenPipeError, ConnectionResetError):
        os._exit(0)


def _zygote_main(sock: socket.socket, base: Path, tier: str, hide: list[str]) -> None:
    """The zygote: forked before the front server has read any request, so its memory holds no test,
    no verdict and no other answer; it learns only limits and files, never a program's code."""
    try:
        linux.set_parent_death_signal()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        linux.close_fds_except({0, 1, 2, sock.fileno()})
        tier, budgets = _enter_shared_namespaces(tier, base, hide)
        linux.set_not_dumpable()  # its programs inherit this: no reading each other's memory
        isolation.install_base_env()
        Zygote(base, tier, sock, budgets).serve()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the front server is gone (the worker stopped): its programs die with this process
    except BaseException:
        with contextlib.suppress(Exception):
            os.write(2, f"sandbox zygote failed:\n{traceback.format_exc()}".encode())
    os._exit(0)


def _enter_shared_namespaces(tier: str, base: Path, hide: list[str]) -> tuple[str, isolation.BudgetFactory]:
    """Confine the server once: new namespaces, then become their PID 1. Returns the tier reached and
    the budget factory (made before the private root, which keeps only its own cgroup folders)."""
    name = f"z{os.getpid()}-{random.randrange(1 << 30)}"
    if tier == "none":
        return tier, isolation.BudgetFactory(tier, name)
    try:
        isolation.enter_namespaces(tier, network=False, strict=True)
    except OSError:
        return "none", isolation.BudgetFactory("none", name)
    pid = os.fork()
    if pid > 0:
        # The original process only waits: the PID-1 child serves the same channel.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    linux.set_parent_death_signal()
    os.chmod(base, 0o711)  # children with their own uids traverse to their scratch dirs, not list
    budgets = isolation.BudgetFactory(tier, name)
    isolation.build_private_root(
        base.parent / f".root-{base.name}", writable=[str(base), *map(str, budgets.dirs)], readable=[]
    )
    return tier, budgets


class RequestReader:
    """Newline-delimited JSON requests from a pipe, in time linear in their size (a 50 MB request
    must not stall every other program the server is watching)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()
        self._scanned = 0

    def read(self) -> list[dict] | None:
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            return None  # the worker went away
        self._buffer += chunk
        requests = []
        start = 0
        while (end := self._buffer.find(b"\n", max(start, self._scanned))) != -1:
            line = bytes(self._buffer[start:end])
            start = end + 1
            if line.strip():
                requests.append(json.loads(line))
        del self._buffer[:start]
        self._scanned = len(self._buffer)
        return requests


def _send_line(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


@dataclass
class _Pending:
    req: dict
    worker: HarnessWorker | None = None
    verdict: dict | None = None
    report: dict | None = None


class FrontServer:
    """The trusted side of the shared sandbox: talks to the worker, decides verdicts.

    Per program it hands the zygote one end of a socket pair (the zygote forks the confined program
    on it) and a harness worker the other end (`harness_pool`): the worker sends the program its code
    and — in `harness` mode — runs the task's test script against it over plain data. The program
    never sees this process, its descriptors or the harness's; see docs/security.md.
    """

    def __init__(self, base: Path, zygote: socket.socket, zygote_pid: int) -> None:
        self.base = base
        self.zygote, self.zygote_pid = zygote, zygote_pid
        self.reader = RequestReader(sys.stdin.fileno())
        self.pending: dict[int, _Pending] = {}
        self.workers: dict[int, HarnessWorker] = {}  # by fd
        self.idle: list[HarnessWorker] = []
        hello = json.loads(self.zygote.recv(65536) or b"{}")
        if not hello.get("ready"):
            _send_line({"id": None, "ready": False, "error": "the sandbox zygote failed to start"})
            os._exit(1)
        self.tier = hello["tier"]
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _freeze_heap()
        # Forked before any request is read, so a worker's memory holds no other program's code or test.
        for _ in range(len(os.sched_getaffinity(0))):
            self._new_worker()
        _send_line({"id": None, "ready": True, "tier": self.tier, "mode": "shared"})

    def serve(self) -> None:
        stdin = self.reader.fd
        zygote = self.zygote.fileno()
        while True:
            ready, _, _ = select.select([stdin, zygote, *self.workers], [], [], 0.5)
            for fd in ready:
                if fd == stdin:
                    requests = self.reader.read()
                    if requests is None:
                        self._shutdown()
                        return
                    for req in requests:
                        self._start(req)
                elif fd == zygote:
                    data = self.zygote.recv(1 << 20)
                    if not data:
                        self._zygote_lost()
                        return
                    report = json.loads(data)
                    entry = self.pending.get(report.pop("id"))
                    if entry:
                        entry.report = report
                        self._maybe_finish(entry)
                elif fd in self.workers:
                    self._read_verdict(self.workers[fd])
            self._enforce_backstops()

    def _start(self, req: dict) -> None:
        rid = req["id"]
        if req.get("cwd") or req.get("readable") or req.get("writable"):
            _send_line({"id": rid, "status": "crashed", "error": "this server runs scratch-only programs"})
            return
        size = sum(len(req.get(k) or "") for k in ("code", "test", "signature"))
        if size > _MAX_PROGRAM:
            # It could not cross to the harness worker and the program in one frame (wire.MAX_FRAME);
            # say so plainly rather than let a worker fail on it.
            error = f"the program is {size} characters; the sandbox takes at most {_MAX_PROGRAM}"
            _send_line({"id": rid, "status": "crashed", "error": error})
            return
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        control = {k: v for k, v in req.items() if k not in ("code", "test", "signature")}
        try:
            socket.send_fds(self.zygote, [json.dumps(control).encode()], [theirs.fileno()])
        finally:
            theirs.close()
        entry = _Pending(req)
        self.pending[rid] = entry
        if req["mode"] == "exec":
            mine.close()
            entry.verdict = {}
            return
        backstop = time.monotonic() + float(req["limits"]["wall_seconds"]) + 10.0
        try:
            entry.worker = self._assign(rid, harness_pool.job_for(req), mine.fileno(), backstop)
        finally:
            mine.close()
        if entry.worker is None:
            self._decided(entry, {"passed": False, "harness_error": "no harness worker could take it"})

    def _assign(self, rid: int, job: dict, channel: int, backstop: float) -> HarnessWorker | None:
        for _ in range(2):  # an idle worker that died since its last job is replaced once
            worker = self.idle.pop() if self.idle else self._new_worker(idle=False)
            try:
                worker.assign(rid, job, channel, backstop)
                return worker
            except (OSError, wire.WireError):
                self._retire(worker)
        return None

    def _new_worker(self, idle: bool = True) -> HarnessWorker:
        worker = HarnessWorker()
        self.workers[worker.fileno()] = worker
        if idle:
            self.idle.append(worker)
        return worker

    def _retire(self, worker: HarnessWorker) -> None:
        self.workers.pop(worker.fileno(), None)
        with contextlib.suppress(ValueError):
            self.idle.remove(worker)
        worker.stop()

    def _read_verdict(self, worker: HarnessWorker) -> None:
        reply = worker.read_reply()
        entry = self.pending.get(worker.request_id) if worker.request_id is not None else None
        worker.request_id = None
        if reply is None or reply.get("retiring"):
            self._retire(worker)
        else:
            self.idle.append(worker)
        if entry is None:
            return  # an idle worker ended (killed from outside): it is replaced when needed
        verdict = (reply or {}).get("verdict") or {
            "passed": False,
            "harness_error": "the harness exited without a verdict",
        }
        self._decided(entry, verdict)

    def _decided(self, entry: _Pending, verdict: dict) -> None:
        entry.verdict, entry.worker = verdict, None
        # The test is over: the program has nothing left to do (a thread it started may still run).
        with contextlib.suppress(OSError):
            self.zygote.send(json.dumps({"kill": entry.req["id"]}).encode())
        self._maybe_finish(entry)

    def _maybe_finish(self, entry: _Pending) -> None:
        if entry.verdict is None or entry.report is None:
            return
        self.pending.pop(entry.req["id"], None)
        _send_line(combine(entry.req, entry.report, entry.verdict))

    def _enforce_backstops(self) -> None:
        """A test still running long after its program's deadline (a loop in the test itself): the
        worker is killed; its end reads as "the harness exited without a verdict"."""
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.request_id is not None and now > worker.backstop:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)

    def _zygote_lost(self) -> None:
        for rid in list(self.pending):
            _send_line({"id": rid, "status": "crashed", "error": "the sandbox zygote exited"})
        self._shutdown()

    def _shutdown(self) -> None:
        for worker in list(self.workers.values()):
            self._retire(worker)
        with contextlib.suppress(OSError):
            self.zygote.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.zygote_pid, signal.SIGKILL)


def combine(req: dict, report: dict, verdict: dict) -> dict:
    """The reply to the worker: how the program ended (zygote) and what the trusted side decided."""
    result = {**report, "id": req["id"]}
    mode = req["mode"]
    if mode == "harness":
        result["verdict"] = verdict
        result["completed"] = bool(verdict.get("passed"))
        result["exception"] = verdict.get("exception")
        if verdict.get("timed_out") and not verdict.get("passed"):
            result["status"] = "timeout"
    elif mode == "python":
        result["completed"] = verdict.get("event") == "done"
        if result["completed"] and result.get("stopped"):
            # It reported its last line and was stopped on its way out: that is a normal exit.
            result.update(exit_code=0, signal=None)
        if verdict.get("event") == "error":
            result["exception"] = {"type": verdict.get("type"), "message": verdict.get("message", "")}
    return result


@dataclass
class _Child:
    req: dict
    paths: dict
    uid: int
    slot: int
    started: float
    deadline: float
    budget: isolation.SampleBudget
    timed_out: bool = False
    killed_for: str | None = None
    stopped: bool = False  # killed because its harness had finished, not for anything it did


class Zygote:
    """The confined half of the shared sandbox: one fork per program, nothing else.

    It is confined once at start (namespaces, read-only filesystem) and forks each program onto the
    socket the front server passed it; the program drops to a uid of its own (root tier), gets its
    limits and a per-sample budget across all of its processes (a cgroup where one can be made, else
    an accounted total polled here), and closes every descriptor but stdio and that socket.
    """

    def __init__(self, base: Path, tier: str, sock: socket.socket, budgets: isolation.BudgetFactory) -> None:
        self.base, self.tier, self.sock = base, tier, sock
        self.counter = 0
        self.children: dict[int, _Child] = {}
        self.by_request: dict[int, int] = {}
        # A random block of uids, so two servers on one machine never share a uid (process limits
        # count per uid, machine-wide).
        self.uid_base = 200000 + random.randrange(0, 3000) * _UID_SLOTS
        # Taken from the end and returned there: the few slots in use stay warm (their cgroups exist).
        self.free_slots = list(range(_UID_SLOTS - 1, -1, -1))
        self.next_poll = 0.0
        self.budgets = budgets
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        self.wake_r = wake_r
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        self.sock.send(json.dumps({"ready": True, "tier": tier}).encode())

    def serve(self) -> None:
        _freeze_heap()
        sock = self.sock.fileno()
        while True:
            timeout = 0.5
            if self.children:
                next_deadline = min(c.deadline for c in self.children.values()) - time.monotonic()
                timeout = max(0.0, min(self.budgets.poll_interval, next_deadline))
            ready, _, _ = select.select([sock, self.wake_r], [], [], timeout)
            if sock in ready:
                try:
                    data, fds, _, _ = socket.recv_fds(self.sock, 1 << 24, 4)
                except OSError:
                    data, fds = b"", []
                if not data:
                    self._kill_all()
                    return
                self._handle(json.loads(data), fds)
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 4096)
            self._enforce()
            self._reap()

    def _reply(self, message: dict) -> None:
        self.sock.send(json.dumps(message).encode())

    def _handle(self, req: dict, fds: list[int]) -> None:
        if "kill" in req:
            for fd in fds:
                os.close(fd)
            pid = self.by_request.get(req["kill"])
            if pid in self.children:
                self.children[pid].stopped = True
                self._kill(pid)
            return
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            self._reply({"id": req["id"], "status": "crashed", "error": "no program channel"})
            return
        channel = fds[0]
        try:
            self._start(req, channel)
        finally:
            os.close(channel)

    def _start(self, req: dict, channel: int) -> None:
        if not self.free_slots:
            self._reply({"id": req["id"], "status": "crashed", "error": "too many programs in flight"})
            return
        slot = self.free_slots.pop()
        uid = self.uid_base + slot
        self.counter += 1
        try:
            paths = isolation.prepare_workdir(
                self.base / f"r{os.getpid()}-{self.counter}", req, self.tier, uid
            )
            budget = self.budgets.new(slot, req["limits"], uid)
        except Exception as exc:
            self.free_slots.append(slot)
            self._reply({"id": req["id"], "status": "crashed", "error": f"preparing the sandbox: {exc!r}"})
            return
        stdout = os.open(paths["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        stderr = os.open(paths["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _become_candidate(req, paths, self.tier, stdout, stderr, channel, budget)
        os.close(stdout)
        os.close(stderr)
        deadline = started + float(req["limits"]["wall_seconds"])
        self.children[pid] = _Child(req, paths, uid, slot, started, deadline, budget)
        self.by_request[req["id"]] = pid

    def _kill(self, pid: int) -> None:
        for kill in (lambda: os.kill(pid, signal.SIGKILL), lambda: os.killpg(pid, signal.SIGKILL)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill()

    def _enforce(self) -> None:
        now = time.monotonic()
        # Budgets are read (cgroup files, or the whole process table) once per poll interval, not on
        # every wake-up: a busy server wakes several times per program.
        poll = now >= self.next_poll
        if poll:
            self.next_poll = now + self.budgets.poll_interval
        for pid, child in self.children.items():
            if child.timed_out or child.killed_for:
                continue
            if now >= child.deadline:
                child.timed_out = True
                self._kill(pid)
                continue
            if not poll:
                continue
            exceeded = child.budget.exceeded(pid)
            if exceeded:
                child.killed_for = exceeded
                self._kill(pid)
                child.budget.kill_all(pid)

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
        self.by_request.pop(child.req["id"], None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # whatever it left in its process group
        child.budget.kill_all(pid)  # and in its budget (cgroup or uid)
        if self.tier == "root" and not child.budget.groups:
            isolation.kill_uid(child.uid)  # and anything that escaped both (a cgroup cannot be left)
        budget = child.budget.close()
        self.free_slots.append(child.slot)
        result = _result(
            child.req,
            child.paths,
            status,
            usage,
            child.timed_out,
            time.monotonic() - child.started,
            self.tier,
        )
        if child.killed_for or budget.get("exceeded"):
            result["budget_exceeded"] = child.killed_for or budget["exceeded"]
        result["budget"] = budget
        if child.stopped and not child.timed_out:
            result["stopped"] = True
        result["isolation"] = isolation.describe(self.tier, network=False, private_root=self.tier != "none")
        result["id"] = child.req["id"]
        result["tier"] = self.tier
        if child.req.get("keep"):
            result["scratch"] = str(child.paths["scratch"])
        self._reply(result)
        if not child.req.get("keep"):
            shutil.rmtree(child.paths["root"], ignore_errors=True)  # after the reply: off its latency

    def _kill_all(self) -> None:
        for pid, child in self.children.items():
            self._kill(pid)
            child.budget.kill_all(pid)
            child.budget.close()
        self.budgets.close()


def _enter_own_namespaces(proc_fd: int) -> None:
    """User-namespace tier: every program shares the zygote's uid, so give it a user namespace of its
    own (no capability over the zygote's mounts or processes: it cannot remount the read-only root or
    ptrace a neighbour) and a PID namespace of its own (it cannot name, signal or trace another
    program). The process that called this waits for the program and exits as it did."""
    uid, gid = os.getuid(), os.getgid()
    linux.set_dumpable(True)  # a non-dumpable process cannot write its own uid_map
    linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWPID)
    isolation.write_id_maps(uid, gid, proc_fd)
    linux.set_dumpable(False)
    pid = os.fork()
    if pid == 0:
        linux.set_parent_death_signal()
        return
    linux.close_fds_except({2})
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _become_candidate(req, paths, tier, stdout, stderr, channel, budget) -> None:
    """In the freshly forked program: nothing inherited but stdio and its channel; confine; run."""
    try:
        signal.set_wakeup_fd(-1)  # the zygote's, closed below
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(channel, candidate.CHANNEL_FD)
        proc_fd = isolation.outer_proc_fd()  # >= 100: never the channel's number
        linux.close_fds_except({0, 1, 2, candidate.CHANNEL_FD, proc_fd})
        os.setsid()
        budget.enter()
        if tier == "userns":
            _enter_own_namespaces(proc_fd)
        if proc_fd >= 0:
            os.close(proc_fd)  # before any of the answer's code runs
        isolation.confine_program(req, paths, tier, filesystem=False)
        if req["mode"] == "exec":
            os.close(candidate.CHANNEL_FD)
            argv = req["argv"]
            os.execvpe(argv[0], argv, os.environ)
        candidate.serve(candidate.CHANNEL_FD)
    except BaseException:
        with contextlib.suppress(Exception):
            os.write(2, f"sandbox setup failed:\n{traceback.format_exc()}".encode())
        os._exit(71)
    os._exit(0)


class _Protocol:
    """Request reading and reply writing of the isolated server."""

    def __init__(self, base: Path, tier: str) -> None:
        self.base, self.tier = base, tier
        self.counter = 0
        self.reader = RequestReader(sys.stdin.fileno())
        self.stdin = self.reader.fd

    def send(self, message: dict) -> None:
        _send_line(message)

    def read_requests(self) -> list[dict] | None:
        return self.reader.read()

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
        _become_program(req, paths, tier, stdout, stderr, status_w, nonce)
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
    result = _result(req, paths, wait_status, usage, timed_out, time.monotonic() - started, tier)
    result["completed"] = report.startswith(nonce)
    result["exception"] = _parse_exception(report)
    os.write(report_fd, json.dumps(result).encode())
    return 0


def _become_program(req, paths, tier, stdout, stderr, status_w, nonce) -> None:
    """In the freshly forked child: wire up output, confine, run. Never returns."""
    try:
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        # Nothing of the supervisor's but stdio and the status pipe (moved to fd 3).
        os.dup2(status_w, 3)
        status_w = 3
        linux.close_fds_except({0, 1, 2, status_w})
        isolation.confine_program(req, paths, tier, filesystem=True)
        _run_program(req, status_w, nonce)
    except BaseException:
        with contextlib.suppress(Exception):
            os.write(2, f"sandbox setup failed:\n{traceback.format_exc()}".encode())
        os._exit(71)
    os._exit(0)


def _run_program(req: dict, status_fd: int, nonce: bytes) -> None:
    """Runs as the confined program. Python mode executes the source in this pre-warmed interpreter."""
    if req["mode"] == "exec":
        os.close(status_fd)
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


def _result(req, paths, wait_status, usage, timed_out: bool, duration: float, tier) -> dict:
    limits = req["limits"]
    result = {
        "status": "timeout" if timed_out else "exited",
        "exit_code": os.waitstatus_to_exitcode(wait_status) if os.WIFEXITED(wait_status) else None,
        "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
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
