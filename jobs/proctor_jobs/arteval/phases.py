"""Run one phase of an artifact (the agent, then the evaluator) as a confined process with its own deadline.

Two isolation modes:

``sandbox`` (default) — Proctor's sandbox (`proctor_jobs.oracle`): PID/mount/network namespaces where the
platform allows, a read-only filesystem except the workspace, an unprivileged uid when running as root.
On top of that the phase sees only what it needs: the system folders (/usr, /etc, ...), the Python
installation, the folders on PATH, the agent's own files and the workspace. Every other folder on the
way to those is covered (`hidden_paths`): the worker's private folder holding the archive, the store,
the checkout the task list came from. This is what keeps `_agent_eval/` out of the agent's reach.

``pod`` — a plain child process in its own session, killed as a group at the deadline. For artifacts
that need root in their image (apt-get, Docker, kind): the per-artifact pod is then the boundary. Only
allowed inside a pod; see docs/artevalbench.md for what it does and does not protect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from proctor_jobs.oracle import Sandbox, SandboxLimits
from proctor_jobs.oracle.forkserver import tail_file

#: Top-level folders every phase may read: the operating system, its tools and their state (dpkg's
#: database in /var/lib is what an environment check may query).
SYSTEM_DIRS = frozenset(
    {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc", "sys", "opt", "var"}
)
#: Covered even inside the system folders: shared scratch space and credentials mounted into pods.
ALWAYS_HIDDEN = ("/var/tmp", "/var/lib/kubelet", "/var/lib/docker", "/var/lib/containerd")
#: What name resolution needs when a phase may use the network (/etc/resolv.conf often links here).
RESOLVER_DIRS = ("/run/systemd/resolve", "/run/resolvconf")


@dataclass
class Phase:
    name: str  # agent | evaluator
    argv: list[str]
    workspace_base: Path  # the sandbox's working (and only writable) folder
    cwd: Path  # where the command starts: the artifact root, inside workspace_base
    deadline_s: float
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False
    memory_mb: int | None = None
    readable: list[Path] = field(default_factory=list)


@dataclass
class PhaseResult:
    status: str  # exited | timeout | crashed
    exit_code: int | None = None
    signal: int | None = None
    duration_s: float = 0.0
    stdout: str = ""
    stderr: str = ""
    isolation: list[str] = field(default_factory=list)
    tier: str = ""
    error: str | None = None

    @property
    def summary(self) -> str:
        if self.status == "timeout":
            return f"timed out after {self.duration_s:.0f} s"
        if self.status == "crashed":
            return f"could not run: {self.error}"
        if self.signal:
            return f"killed by signal {self.signal}"
        return f"exit status {self.exit_code}"

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "duration_s": round(self.duration_s, 3),
            "isolation": self.isolation,
            "tier": self.tier,
            "error": self.error,
        }


def in_pod() -> bool:
    """Whether this worker runs in a Kubernetes pod (the kubelet always sets KUBERNETES_SERVICE_HOST)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def python_tools(folder: Path) -> Path:
    """A bin folder whose `python` and `python3` are this worker's interpreter.

    The original runs evaluators with `python`; on a host `python3` may be a shim (pyenv) that cannot work
    in a confined environment, and `python` may not exist at all. Phases get these first on PATH.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        target = folder / name
        target.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        target.chmod(0o755)
    return folder


def path_dirs() -> list[str]:
    return [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(":") if p and os.path.isdir(p)]


def python_paths() -> list[str]:
    """What a phase's `python` needs to read: the installation and its site-packages folders.

    Not the rest of sys.path: that holds the worker's current folder and Proctor's own source checkout
    (an editable install), which a phase has no business reading.
    """
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")))
    return sorted(os.path.realpath(p) for p in paths if p and os.path.isdir(p))


def hidden_paths(needed: list[str | Path]) -> list[str]:
    """Every folder to cover so that only `needed` (and the system folders) stays visible.

    Walks from / towards each needed path and covers each sibling folder on the way: /tmp's other
    entries, the rest of a checkout around a virtualenv, the worker's private folder next to the
    workspace. Symlinks are left alone (covering one would cover its target, possibly a needed one).
    """
    real = {os.path.realpath(str(p)) for p in needed if os.path.exists(str(p))}
    ancestors: set[str] = set()
    for path in real:
        current = path
        while current != "/":
            current = os.path.dirname(current)
            ancestors.add(current)
    hide: list[str] = []

    def visit(folder: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path = os.path.join(folder, entry.name)
            if folder == "/" and entry.name in SYSTEM_DIRS:
                continue
            try:
                if entry.is_symlink() or not entry.is_dir():
                    continue
            except OSError:
                continue
            if path in real:
                continue
            if path in ancestors:
                visit(path)
            else:
                hide.append(path)

    visit("/")
    hide.extend(p for p in ALWAYS_HIDDEN if os.path.isdir(p) and not os.path.islink(p) and p not in real)
    return hide


def _clamped(resource_id: int, wanted: int) -> int:
    """A limit no higher than the hard limit this process has (raising it would fail for non-root)."""
    _, hard = resource.getrlimit(resource_id)
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def phase_limits(phase: Phase) -> SandboxLimits:
    cpus = max(1, len(os.sched_getaffinity(0)))
    return SandboxLimits(
        wall_seconds=phase.deadline_s,
        # Builds run many processes; CPU time per process may exceed the wall time on several cores.
        cpu_seconds=phase.deadline_s * cpus + 1,
        # An address-space limit breaks JVMs, Go and Node; without an explicit one the pod's limit applies.
        memory_mb=phase.memory_mb or 4 * 1024 * 1024,
        max_processes=_clamped(resource.RLIMIT_NPROC, 4096),
        max_file_mb=1024 * 1024,
        max_open_files=_clamped(resource.RLIMIT_NOFILE, 4096),
        network=phase.network,
    )


async def run_phase(phase: Phase, mode: str, sandbox_dir: Path) -> PhaseResult:
    if mode == "pod":
        return await _run_in_pod(phase)
    return await _run_in_sandbox(phase, sandbox_dir)


async def _run_in_sandbox(phase: Phase, sandbox_dir: Path) -> PhaseResult:
    sandbox_dir.mkdir(parents=True, exist_ok=True)
    readable = [str(p) for p in phase.readable] + path_dirs() + [str(sandbox_dir)]
    if phase.network:
        readable += [p for p in RESOLVER_DIRS if os.path.isdir(p)]
    hide = hidden_paths([phase.workspace_base, *readable, *python_paths()])
    # The sandbox starts the program in its working folder; the phase starts in the artifact root.
    relative = os.path.relpath(phase.cwd, phase.workspace_base)
    argv = ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', f"arteval-{phase.name}", relative, *phase.argv]
    async with Sandbox(concurrency=1, preload=(), base_dir=sandbox_dir, hide=hide) as sandbox:
        result = await sandbox.run_command(
            argv,
            phase_limits(phase),
            cwd=phase.workspace_base,
            env=phase.env,
            readable=readable,
        )
    return PhaseResult(
        status=result.status,
        exit_code=result.exit_code,
        signal=result.signal,
        duration_s=result.duration_s,
        stdout=result.stdout,
        stderr=result.stderr,
        isolation=[*result.isolation, *(["hidden-folders"] if result.tier in ("root", "userns") else [])],
        tier=result.tier,
        error=result.error,
    )


async def _run_in_pod(phase: Phase) -> PhaseResult:
    """A child process group with a deadline; output to files so a chatty agent cannot fill a pipe."""
    out_path = phase.workspace_base / f".arteval-{phase.name}.stdout"
    err_path = phase.workspace_base / f".arteval-{phase.name}.stderr"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **phase.env}
    started = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = await asyncio.create_subprocess_exec(
                *phase.argv,
                cwd=str(phase.cwd),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as exc:
            return PhaseResult(status="crashed", error=f"{phase.argv[0]}: {exc}", tier="pod")
        status = "exited"
        try:
            await asyncio.wait_for(proc.wait(), phase.deadline_s)
        except TimeoutError:
            status = "timeout"
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # also whatever it left running in the background
            await proc.wait()
    code = proc.returncode
    result = PhaseResult(
        status=status,
        exit_code=code if code is not None and code >= 0 else None,
        signal=-code if code is not None and code < 0 else None,
        duration_s=time.monotonic() - started,
        stdout=tail_file(out_path),
        stderr=tail_file(err_path),
        isolation=["process-group", "pod"],
        tier="pod",
    )
    for path in (out_path, err_path):
        path.unlink(missing_ok=True)
    return result


def shell() -> str:
    return shutil.which("bash") or "/bin/sh"
