"""How a sandboxed program is confined, in three tiers chosen by what the platform allows.

- ``root`` (running as root, e.g. a CI machine or a privileged node): new mount, PID, IPC, UTS and
  network namespaces; every mount read-only except the program's scratch directory; a fresh /proc,
  /dev/shm; directories the program must read (the Python installation) made reachable, everything
  else under non-world-readable directories hidden; then the program drops to a dedicated
  unprivileged uid, so process-count limits apply and no file it does not own is writable.
- ``userns`` (an ordinary user where unprivileged user namespaces are allowed): the same namespaces
  inside a user namespace mapping the user to root; read-only mounts; no uid change.
- ``none`` (no namespaces, e.g. a locked-down pod): resource limits and a process group only. In a
  cluster the pod itself supplies the rest (non-root, read-only root filesystem, no service-account
  token, default-deny egress NetworkPolicy, optional gVisor).

Every result names its tier, so a weaker run is visible rather than silent.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import stat
import sys
from pathlib import Path

from proctor_jobs.oracle import linux

_BASE_NS = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS


def probe_tier() -> str:
    """The strongest tier this process can set up, found by trying it in a throwaway child."""
    candidates = ["root", "userns", "none"] if os.geteuid() == 0 else ["userns", "none"]
    for tier in candidates[:-1]:
        pid = os.fork()
        if pid == 0:
            try:
                enter_namespaces(tier, network=False, strict=True)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            return tier
    return "none"


def enter_namespaces(tier: str, network: bool, strict: bool = False) -> str:
    """Unshare the namespaces of `tier`; falls back to `none` unless `strict`."""
    net = 0 if network else linux.CLONE_NEWNET
    try:
        if tier == "root":
            linux.unshare(_BASE_NS | net)
        elif tier == "userns":
            uid, gid = os.getuid(), os.getgid()
            linux.unshare(linux.CLONE_NEWUSER | _BASE_NS | net)
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
            Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
        return tier
    except OSError:
        if strict:
            raise
        return "none"


def describe(tier: str, network: bool) -> list[str]:
    parts = ["rlimits", "process-group"]
    if tier in ("root", "userns"):
        parts += ["pid-namespace", "mount-namespace", "read-only-filesystem"]
        if not network:
            parts.append("no-network")
    if tier == "root":
        parts.append("unprivileged-uid")
    if tier == "userns":
        parts.append("user-namespace")
    return parts


def prepare_workdir(workdir: Path, req: dict, tier: str, uid: int) -> dict:
    """Create the request's directories and input files before anything is confined."""
    workdir.mkdir(mode=0o711, parents=True)
    scratch = Path(req["cwd"]) if req.get("cwd") else workdir / "scratch"
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, content in (req.get("files") or {}).items():
        target = (scratch / name).resolve()
        if not target.is_relative_to(scratch.resolve()):
            raise ValueError(f"input file {name!r} would land outside the scratch directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    if tier == "root":
        for path in [scratch, *scratch.rglob("*")]:
            os.lchown(path, uid, uid)
    return {
        "root": workdir,
        "scratch": scratch,
        "stdout": workdir / "stdout",
        "stderr": workdir / "stderr",
        "uid": uid,
    }


def confine_program(req: dict, paths: dict, tier: str, filesystem: bool = True) -> None:
    """Runs in the program's process. `filesystem=False` when the server already confined it."""
    scratch: Path = paths["scratch"]
    if filesystem and tier in ("root", "userns"):
        confine_filesystem(
            writable=[str(scratch), *req.get("writable", [])],
            readable=req.get("readable", []),
            hide=req.get("hide", []),
            expose=tier == "root",
        )
    os.chdir(scratch)
    if os.environ.get(_BASE_ENV_MARK):
        # The server installed the common part once (install_base_env); only set what differs.
        del os.environ[_BASE_ENV_MARK]
        os.environ.update(_scratch_env(scratch))
        os.environ.update({str(k): str(v) for k, v in (req.get("env") or {}).items()})
    else:
        os.environ.clear()
        os.environ.update(_program_env(scratch, req.get("env") or {}))
    set_rlimits(req["limits"], tier)
    if tier == "root":
        uid = paths["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        # Leftovers of an earlier program with this uid (a daemonised fork bomb) die now; kill(-1)
        # reaches every process this uid may signal in our PID namespace, except the caller.
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
    with contextlib.suppress(OSError):
        linux.set_no_new_privs()
    # Changing uid clears the parent-death signal; set it again so the program dies with its server.
    linux.set_parent_death_signal()


def kill_uid(uid: int) -> None:
    """Kill every process of `uid` visible here, from a short-lived child that becomes that uid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)


_BASE_ENV_MARK = "PROCTOR_SANDBOX_BASE_ENV"


def _base_env() -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    if os.environ.get("VIRTUAL_ENV"):
        env["VIRTUAL_ENV"] = os.environ["VIRTUAL_ENV"]
    return env


def _scratch_env(scratch: Path) -> dict:
    return {"HOME": str(scratch), "TMPDIR": str(scratch), "MPLCONFIGDIR": str(scratch / ".mpl")}


def _program_env(scratch: Path, extra: dict) -> dict:
    env = {**_base_env(), **_scratch_env(scratch)}
    env.update({str(k): str(v) for k, v in extra.items()})
    return env


def install_base_env() -> None:
    """Replace the server's environment by the programs' common one, once (a shared-mode server
    needs nothing else from it), so each child only sets its scratch paths: rebuilding the whole
    environment per program cost a measurable share of a short program's life."""
    env = _base_env()
    os.environ.clear()
    os.environ.update(env)
    os.environ[_BASE_ENV_MARK] = "1"


def _python_paths() -> list[str]:
    """What a confined Python needs to read: its installation and its import path."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted(os.path.realpath(p) for p in paths if os.path.exists(p))


def confine_filesystem(writable: list[str], readable: list[str], hide: list[str], expose: bool) -> None:
    """Make this mount namespace read-only except `writable`; hide `hide`; with `expose`, make the
    Python installation and `readable` reachable for an unprivileged uid (see `_make_reachable`)."""
    linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE)
    writable = [os.path.realpath(p) for p in writable]
    readable = _python_paths() + [os.path.realpath(p) for p in readable]
    if expose:
        _make_reachable(readable + writable)
    for path in writable:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    for path in hide:
        if os.path.isdir(path) and not any(p.startswith(os.path.realpath(path) + "/") for p in writable):
            with contextlib.suppress(OSError):
                linux.mount("tmpfs", path, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=4k,mode=755")
    with contextlib.suppress(OSError):
        linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    with contextlib.suppress(OSError):
        linux.mount("tmpfs", "/dev/shm", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=64m,mode=1777")
    keep_writable = {*writable, "/dev/shm", "/proc", "/dev/pts"}
    for target, options in linux.mount_points():
        if target in keep_writable or target.startswith(("/proc/", "/sys")) or "ro" in options:
            continue
        flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.flags_of(options)
        try:
            linux.mount(None, target, None, flags)
        except OSError:
            if target == "/":
                raise  # without a read-only root the program could write anywhere: refuse to run it


def _make_reachable(paths: list[str]) -> None:
    """Let an unprivileged uid reach `paths` without opening their non-world-readable parents.

    A parent such as /root (mode 700) is covered with an empty tmpfs, and only the children on the
    way to a needed path are bind-mounted back from file handles opened before the cover. Siblings
    (credentials, other runs' data) stay hidden.
    """
    for _ in range(16):  # each pass uncovers one level of blocked ancestors
        blocked: dict[str, set[str]] = {}
        for path in paths:
            ancestor = _first_blocked_ancestor(path)
            if ancestor:
                child = path[len(ancestor) :].lstrip("/").split("/", 1)[0]
                blocked.setdefault(ancestor, set()).add(child)
        if not blocked:
            return
        for ancestor, children in sorted(blocked.items()):
            handles = {c: os.open(os.path.join(ancestor, c), os.O_PATH) for c in children}
            linux.mount("tmpfs", ancestor, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=64k,mode=755")
            for child, fd in handles.items():
                target = os.path.join(ancestor, child)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.mkdir(target)
                else:
                    Path(target).touch()
                linux.mount(f"/proc/self/fd/{fd}", target, None, linux.MS_BIND | linux.MS_REC)
                os.close(fd)
    raise OSError("could not make the Python installation reachable inside the sandbox")


def _first_blocked_ancestor(path: str) -> str | None:
    parts = path.strip("/").split("/")
    current = ""
    for part in parts[:-1]:
        current += "/" + part
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return None
        if not mode & stat.S_IXOTH:
            return current
    return None


def set_rlimits(limits: dict, tier: str) -> None:
    """CPU, memory, file-size, open-file and process limits for the program."""
    wall = float(limits["wall_seconds"])
    cpu = int(limits.get("cpu_seconds") or (int(wall) + 1))
    mem = int(limits["memory_mb"]) * 1024 * 1024
    fsize = int(limits["max_file_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["max_open_files"]),) * 2)
    nproc = int(limits["max_processes"])
    if tier != "root":
        # Without a dedicated uid the limit counts every process of this user, so add the current ones.
        nproc += processes_of_uid(os.getuid())
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def processes_of_uid(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry.path).st_uid == uid:
                    count += 1
    return count
