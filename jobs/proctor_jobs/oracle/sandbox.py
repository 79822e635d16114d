"""The sandbox client: run untrusted Python source or commands in confined child processes.

The worker talks to a fork server (`forkserver.py`) over pipes; the server, not the worker, forks
the confined children. If the server dies, in-flight programs are reported as crashed and the next
request starts a new server, so one disaster costs one item, not the shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "typing", "numpy")


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits. `cpu_seconds` defaults to the wall time plus one second."""

    wall_seconds: float = 2.0
    cpu_seconds: float | None = None
    memory_mb: int = 2048
    max_processes: int = 64
    max_file_mb: int = 64
    max_open_files: int = 256
    network: bool = False


@dataclass
class SandboxResult:
    status: str  # exited | timeout | crashed
    mode: str = "python"  # python | exec | harness
    exit_code: int | None = None
    signal: int | None = None
    completed: bool = False  # python mode: the program ran to its last line
    exception: dict | None = None  # python mode: {"type", "message"} of an uncaught exception
    duration_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    stdout: str = ""
    stderr: str = ""
    isolation: list[str] = field(default_factory=list)
    tier: str = ""
    scratch: str | None = None
    error: str | None = None
    collected: dict = field(default_factory=dict)
    verdict: dict = field(default_factory=dict)  # harness mode: what the trusted harness decided
    budget: dict = field(default_factory=dict)  # the per-sample budget: kind, limits, peak
    budget_exceeded: str | None = None  # memory | processes

    @property
    def ok(self) -> bool:
        """Harness mode: the test script ran to its end in the trusted harness. Otherwise: the program
        finished on its own with exit status 0 (python mode: and reported reaching its last line)."""
        if self.mode == "harness":
            return bool(self.verdict.get("passed")) and not self.budget_exceeded
        return self.status == "exited" and self.exit_code == 0 and (self.completed or self.mode == "exec")

    @property
    def reason(self) -> str:
        """A short, human-readable reason for a program that did not succeed."""
        if self.status == "timeout":
            return f"timeout: killed after {self.duration_s:.1f} s wall clock"
        if self.status == "crashed":
            return f"sandbox error: {self.error or 'unknown'}"
        if self.budget_exceeded:
            limit = self.budget.get("memory_mb") if self.budget_exceeded == "memory" else None
            what = f"{limit} MB" if limit else f"{self.budget.get('processes')} processes"
            return f"{self.budget_exceeded} budget exceeded: the sample's processes went over {what}"
        if self.exception:
            kind = self.exception.get("type", "Exception")
            message = self.exception.get("message", "")
            return f"{kind}: {message}" if message else kind
        if self.signal:
            names = {
                9: "SIGKILL (CPU or memory limit)",
                24: "SIGXCPU (CPU limit)",
                25: "SIGXFSZ (file size limit)",
            }
            return f"killed by signal {names.get(self.signal, self.signal)}"
        if self.exit_code == 0 and not self.completed and self.mode == "python":
            return "exited before the program finished (exit status 0 from inside the program)"
        if self.exit_code not in (0, None):
            tail = self.stderr.strip().splitlines()[-1:] or [""]
            return f"exit status {self.exit_code}: {tail[0][:300]}"
        return "ok"


class SandboxCrashed(RuntimeError):
    pass


#: The only variables a sandbox server starts with (values from the worker's environment, if set).
SERVER_ENV_KEYS = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PROCTOR_SANDBOX_TIER",  # lowers the tier for tests of weaker ones (isolation.probe_tier)
)


def server_environment() -> dict[str, str]:
    env = {k: os.environ[k] for k in SERVER_ENV_KEYS if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    # The worker may have found proctor_jobs through its own sys.path (a source checkout); keep that.
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in parts:
        parts.append(here)
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


class _ServerHandle:
    """One fork-server process and the replies it owes."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task | None = None
        self.pending: dict[int, asyncio.Future] = {}
        self.tier: str | None = None
        self.lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, base: Path, preload: tuple[str, ...], hide: list[str]) -> None:
        # An explicit, minimal environment: the worker's holds store credentials and the judge key, and
        # `environ.clear()` in the server would still leave them in its initial stack for any child.
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # neither the working directory nor `/` on its import path (and so in its sandbox)
            "-m",
            "proctor_jobs.oracle.forkserver",
            str(base),
            ",".join(preload),
            self.mode,
            json.dumps(hide),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
            env=server_environment(),
            cwd="/",
        )
        hello = json.loads(await self.proc.stdout.readline() or b"{}")
        if not hello.get("ready"):
            raise SandboxCrashed("the sandbox server failed to start")
        self.tier = hello["tier"]
        self.reader = asyncio.create_task(self._read_replies(self.proc))

    async def _read_replies(self, proc: asyncio.subprocess.Process) -> None:
        try:
            while line := await proc.stdout.readline():
                reply = json.loads(line)
                future = self.pending.pop(reply.get("id"), None)
                if future and not future.done():
                    future.set_result(reply)
        finally:
            # The server is gone: fail whatever was in flight so callers record it and move on.
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(SandboxCrashed("the sandbox server exited"))
            self.pending.clear()

    async def close(self) -> None:
        if self.alive:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        if self.reader:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


class Sandbox:
    """An async handle on the fork servers. Use as `async with Sandbox() as sb:`.

    Programs that need only a scratch directory go to a `shared` server (confined once, one fork
    per program); commands with their own working directory or extra readable paths go to an
    `isolated` server (fresh namespaces per program). Each is started on first use.
    `concurrency` bounds programs in flight (default: the CPUs this process may use).
    """

    def __init__(
        self,
        concurrency: int | None = None,
        preload: tuple[str, ...] = DEFAULT_PRELOAD,
        base_dir: str | Path | None = None,
        hide: list[str] | None = None,
    ) -> None:
        self.concurrency = concurrency or len(os.sched_getaffinity(0))
        self.preload = preload
        self._base_dir = Path(base_dir) if base_dir else None
        self._own_base: tempfile.TemporaryDirectory | None = None
        self.hide = list(hide or [])
        self._servers = {"shared": _ServerHandle("shared"), "isolated": _ServerHandle("isolated")}
        self._ids = itertools.count(1)
        self._slots = asyncio.Semaphore(self.concurrency)

    @property
    def tier(self) -> str | None:
        return self._servers["shared"].tier or self._servers["isolated"].tier

    async def __aenter__(self) -> Sandbox:
        await self._server("shared")
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        for server in self._servers.values():
            await server.close()
        if self._own_base:
            self._own_base.cleanup()
            self._own_base = None

    async def run_python(
        self,
        code: str,
        limits: SandboxLimits = SandboxLimits(),
        files: dict[str, str] | None = None,
        keep: bool = False,
        env: dict[str, str] | None = None,
        filename: str = "<solution>",
    ) -> SandboxResult:
        """Execute Python source in a confined child of the pre-warmed server."""
        req = {"mode": "python", "code": code, "filename": filename}
        return await self._request(req, limits, files, keep, env)

    async def run_test(
        self,
        code: str,
        test_script: str,
        entry: str,
        limits: SandboxLimits = SandboxLimits(),
        signature: str = "",
        filename: str = "<solution>",
    ) -> SandboxResult:
        """Run the answer `code` in a confined child and the task's `test_script` in a trusted harness
        process that calls `entry` over plain data; the verdict is the harness's (`result.ok`)."""
        req = {
            "mode": "harness",
            "code": code,
            "test": test_script,
            "signature": signature,
            "entry": entry,
            "filename": filename,
        }
        return await self._request(req, limits, None, False, None)

    async def run_command(
        self,
        argv: list[str],
        limits: SandboxLimits = SandboxLimits(),
        files: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        keep: bool = False,
        env: dict[str, str] | None = None,
        readable: list[str] | None = None,
    ) -> SandboxResult:
        """Execute a command confined the same way (its working directory is the only writable place)."""
        req: dict = {"mode": "exec", "argv": [str(a) for a in argv]}
        if readable:
            req["readable"] = [str(p) for p in readable]
        if cwd:
            req["cwd"] = str(cwd)
        return await self._request(req, limits, files, keep, env)

    async def _server(self, mode: str) -> _ServerHandle:
        server = self._servers[mode]
        async with server.lock:
            if not server.alive:
                if self._base_dir is None and self._own_base is None:
                    self._own_base = tempfile.TemporaryDirectory(prefix="proctor-sandbox-")
                root = self._base_dir or Path(self._own_base.name)
                # Each server confines its own base directory; keep them apart.
                await server.start(root / mode, self.preload, self.hide)
        return server

    async def _request(self, req, limits, files, keep, env) -> SandboxResult:
        mode = "isolated" if (req.get("cwd") or req.get("readable") or limits.network) else "shared"
        async with self._slots:
            server = await self._server(mode)
            req = {
                **req,
                "id": next(self._ids),
                "limits": asdict(limits),
                "files": files or {},
                "keep": keep,
                "env": env or {},
            }
            future = asyncio.get_running_loop().create_future()
            server.pending[req["id"]] = future
            try:
                server.proc.stdin.write((json.dumps(req) + "\n").encode())
                await server.proc.stdin.drain()
                reply = await future
            except (SandboxCrashed, ConnectionError, BrokenPipeError) as exc:
                server.pending.pop(req["id"], None)
                return SandboxResult(
                    status="crashed", mode=req["mode"], error=str(exc), tier=server.tier or ""
                )
            known = SandboxResult.__dataclass_fields__
            return SandboxResult(mode=req["mode"], **{k: v for k, v in reply.items() if k in known})
