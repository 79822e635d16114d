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
import fcntl
import os
import resource
import signal
import stat
import sys
from pathlib import Path

from proctor_jobs.oracle import linux

_BASE_NS = linux.CLONE_NEWNS | linux.CLONE_NEWPID | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS


TIER_OVERRIDE = "PROCTOR_SANDBOX_TIER"


def probe_tier(private_root_in: Path | None = None) -> str:
    """The strongest tier this process can set up, found by trying it in a throwaway child (with
    `private_root_in`, a private root built there too: a container may allow the namespaces but not
    the mounts). `PROCTOR_SANDBOX_TIER` may lower it (to test a weaker tier), never raise it."""
    candidates = ["root", "userns", "none"] if os.geteuid() == 0 else ["userns", "none"]
    ceiling = os.environ.get(TIER_OVERRIDE)
    if ceiling in candidates:
        candidates = candidates[candidates.index(ceiling) :]
    for tier in candidates[:-1]:
        pid = os.fork()
        if pid == 0:
            try:
                enter_namespaces(tier, network=False, strict=True)
                if private_root_in is not None:
                    _probe_private_root(private_root_in)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            return tier
    return "none"


def _probe_private_root(where: Path) -> None:
    """In a throwaway child that entered its namespaces: become PID 1 and build a private root."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            scratch = where / "probe-scratch"
            scratch.mkdir(parents=True, exist_ok=True)
            build_private_root(where / "probe-root", writable=[str(scratch)], readable=[])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("a private root cannot be built here")


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


_OUTER_PROC_FD = -1


def outer_proc_fd() -> int:
    """The container's /proc, when the private root has none of its own (else -1)."""
    return _OUTER_PROC_FD


def write_id_maps(uid: int, gid: int, proc_fd: int = -1) -> None:
    """Map `uid`/`gid` to themselves in the user namespace just entered (through `proc_fd` when this
    mount namespace has no /proc)."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        if proc_fd >= 0:
            fd = os.open(f"self/{name}", os.O_WRONLY, dir_fd=proc_fd)
        else:
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def describe(tier: str, network: bool, private_root: bool = False) -> list[str]:
    parts = ["rlimits", "process-group", "closed-descriptors", "minimal-environment"]
    if tier in ("root", "userns"):
        parts += ["pid-namespace", "mount-namespace", "read-only-filesystem"]
        if private_root:
            parts.append("private-root")
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
    """What a confined Python needs to read: its installation, its import path and Proctor's own code.
    Never the working directory or `/`: the server starts with `-P` from `/`, so neither is on it."""
    import proctor_jobs

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(proctor_jobs.__file__))))
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)} - {"/"})


#: What every confined program may read besides Python: the system's programs and libraries and its
#: configuration. Nothing else of the host exists inside (no home, no working directory, no store,
#: no benchmark data, no mounted Secrets).
SYSTEM_PATHS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/var/lib/texmf",  # TeX's generated formats (pdflatex.fmt): the LaTeX renderer needs them
    "/var/cache/fontconfig",
)
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def build_private_root(jail: Path, writable: list[str], readable: list[str]) -> None:
    """Replace this mount namespace's root by a new one holding only `SYSTEM_PATHS`, Python, `readable`
    (read-only) and `writable` (at the same paths). Must run as PID 1 of a new PID namespace (for
    /proc). Data hiding by construction: whatever is not listed does not exist for the program."""
    linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE)
    jail.mkdir(parents=True, exist_ok=True)
    linux.mount("tmpfs", str(jail), "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m,mode=755")
    ro = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV

    def place(source: str, writable_: bool) -> None:
        target = str(jail) + source
        if os.path.islink(source) and source in SYSTEM_PATHS:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.lexists(target):
                os.symlink(os.readlink(source), target)
            return
        if not os.path.exists(source) or (os.path.exists(target) and os.path.ismount(target)):
            return
        if os.path.isdir(source):
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            Path(target).touch()
        linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)
        if not writable_:
            linux.mount(None, target, None, ro)

    for path in SYSTEM_PATHS:
        place(path, False)
    for path in sorted(set(_python_paths() + [os.path.realpath(p) for p in readable])):
        place(path, False)
    for path in DEVICES:
        place(path, True)
    for path in writable:
        place(os.path.realpath(path), True)
    for name in ("proc", "tmp", "dev/shm", ".old"):
        os.makedirs(jail / name, mode=0o755, exist_ok=True)
    # This PID namespace's /proc, mounted while the host's is still visible: in a user namespace the
    # kernel allows a new proc mount only beside a fully visible one. A container runtime masks parts
    # of its /proc, which makes it not fully visible: then programs get no /proc at all (Python needs
    # none), never the container's, whose entries would show the worker.
    try:
        linux.mount("proc", str(jail / "proc"), "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    except PermissionError:
        # Keep a handle on the container's /proc for this server only: its programs write their own
        # uid_map through it (`write_id_maps`) and close it before they run anything.
        global _OUTER_PROC_FD
        handle = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
        _OUTER_PROC_FD = fcntl.fcntl(handle, fcntl.F_DUPFD_CLOEXEC, 100)
        os.close(handle)
    shm_flags = linux.MS_NOSUID | linux.MS_NODEV
    linux.mount("tmpfs", str(jail / "dev/shm"), "tmpfs", shm_flags, "size=64m,mode=1777")
    linux.pivot_root(str(jail), str(jail / ".old"))
    os.chdir("/")
    linux.umount("/.old", linux.MNT_DETACH)
    os.rmdir("/.old")
    linux.mount(None, "/", None, ro)


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


#: processes of the uid assumed when there is no /proc to count them (a pod whose runtime masks it): the
#: worker, its servers and a harness per slot
_UNCOUNTED_ALLOWANCE = 256


def processes_of_uid(uid: int) -> int:
    if not os.path.isdir("/proc/self"):
        return _UNCOUNTED_ALLOWANCE
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry.path).st_uid == uid:
                    count += 1
    return count


# ---- per-sample budgets across all of a program's processes -----------------------------------------

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _cgroup_layout() -> str | None:
    """'v2' or 'v1' when this process can make cgroups with memory and pids control, else None."""
    if os.geteuid() != 0:
        return None
    if (_CGROUP_ROOT / "cgroup.controllers").is_file():
        controllers = (_CGROUP_ROOT / "cgroup.subtree_control").read_text().split()
        if {"memory", "pids"} <= set(controllers) and os.access(_CGROUP_ROOT, os.W_OK):
            return "v2"
        return None
    if all(os.access(_CGROUP_ROOT / c, os.W_OK) for c in ("memory", "pids")):
        return "v1"
    return None


class BudgetFactory:
    """Makes one budget per program: a cgroup where this process may create one (root on cgroup v1, or
    a delegated v2 tree), otherwise an accounted total that the server polls and enforces by killing."""

    def __init__(self, tier: str, name: str) -> None:
        self.tier, self.name = tier, name
        self.layout = _cgroup_layout() if tier == "root" else None
        self.poll_interval = 0.1 if self.layout else 0.05
        self.dirs: list[Path] = []
        self.applied: dict[int, tuple[int, int]] = {}  # slot -> the limits its cgroup has now
        if self.layout == "v1":
            self.dirs = [_CGROUP_ROOT / c / "proctor" / name for c in ("memory", "pids")]
        elif self.layout == "v2":
            self.dirs = [_CGROUP_ROOT / "proctor" / name]
        try:
            for d in self.dirs:
                d.mkdir(parents=True, exist_ok=True)
            if self.layout == "v2":
                (self.dirs[0].parent / "cgroup.subtree_control").write_text("+memory +pids")
                (self.dirs[0] / "cgroup.subtree_control").write_text("+memory +pids")
        except OSError:
            self.layout, self.dirs, self.poll_interval = None, [], 0.05

    @property
    def kind(self) -> str:
        if self.layout:
            return f"cgroup-{self.layout}"
        # Accounting reads /proc; without one (a runtime that masks it) only per-process limits hold.
        return "accounted" if os.path.isdir("/proc/self") else "rlimits-only"

    def close(self) -> None:
        """Remove this server's (empty) cgroup folders."""
        for folder in self.dirs:
            for group in folder.glob("s*"):
                _remove_cgroup(group)
            with contextlib.suppress(OSError):
                folder.rmdir()

    def new(self, slot: int, limits: dict, uid: int) -> SampleBudget:
        memory = int(limits["memory_mb"]) * 1024 * 1024
        processes = int(limits["max_processes"])
        if not self.layout:
            return SampleBudget(self.kind, [], memory, processes, uid if self.tier == "root" else None)
        # One cgroup per uid slot, made once and reused (making and removing one per program cost more
        # than a short program's whole run); a slot is reused only after its program was reaped and
        # everything left in its group killed.
        groups = [d / f"s{slot}" for d in self.dirs]
        if self.applied.get(slot) != (memory, processes):
            for group in groups:
                group.mkdir(exist_ok=True)
            if self.layout == "v1":
                _set_v1_memory(groups[0], memory)
                _write(groups[1] / "pids.max", processes)
            else:
                _write(groups[0] / "memory.max", memory)
                with contextlib.suppress(OSError):
                    _write(groups[0] / "memory.swap.max", 0)
                _write(groups[0] / "pids.max", processes)
            self.applied[slot] = (memory, processes)
        if self.layout == "v1":
            with contextlib.suppress(OSError):
                _write(groups[0] / "memory.max_usage_in_bytes", 0)  # resets the peak
        budget = SampleBudget(self.kind, groups, memory, processes, None)
        budget.oom_before = budget.oom_kills()
        return budget


class SampleBudget:
    """Memory and process count of one program and everything it starts."""

    def __init__(self, kind: str, groups: list[Path], memory: int, processes: int, uid: int | None) -> None:
        self.kind, self.groups, self.memory, self.processes, self.uid = kind, groups, memory, processes, uid
        self.peak = 0
        self.exceeded_for: str | None = None
        self.oom_before = 0

    def oom_kills(self) -> int:
        """The kernel's count of OOM kills in this group (cumulative over the slot's programs)."""
        if not self.groups:
            return 0
        events = "memory.oom_control" if self.kind == "cgroup-v1" else "memory.events"
        return _kv(self.groups[0] / events).get("oom_kill", 0)

    def enter(self) -> None:
        """In the program, before it drops privileges: join the cgroup(s)."""
        for group in self.groups:
            name = "cgroup.procs"
            (group / name).write_text("0")

    def members(self, root_pid: int) -> list[tuple[int, int]]:
        """(pid, rss bytes) of the program's processes: its cgroup, or (accounted) its uid in the root
        tier, else its session and descendants."""
        if self.groups:
            pids = _read_pids(self.groups[0] / "cgroup.procs")
            return [(pid, _rss(pid)) for pid in pids]
        table = _process_table()
        if self.uid is not None:
            return [(pid, rss) for pid, (_, _, uid, rss) in table.items() if uid == self.uid]
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        found, stack = set(), [root_pid]
        while stack:
            pid = stack.pop()
            if pid in found:
                continue
            found.add(pid)
            stack.extend(children.get(pid, []))
        found.update(pid for pid, (_, sid, _, _) in table.items() if sid == root_pid)
        return [(pid, table[pid][3]) for pid in found if pid in table]

    def exceeded(self, root_pid: int) -> str | None:
        if self.groups:
            return "memory" if self.oom_kills() > self.oom_before else None
        members = self.members(root_pid)
        total = sum(rss for _, rss in members)
        self.peak = max(self.peak, total)
        if total > self.memory:
            return "memory"
        if len(members) > self.processes:
            return "processes"
        return None

    def kill_all(self, root_pid: int) -> None:
        for _ in range(5):
            members = self.members(root_pid)
            if not members:
                return
            for pid, _ in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if not self.groups:
                return
            import time

            time.sleep(0.01)

    def close(self) -> dict:
        summary: dict = {
            "kind": self.kind,
            "memory_mb": self.memory // (1 << 20),
            "processes": self.processes,
        }
        if self.groups:
            name = "memory.max_usage_in_bytes" if self.kind == "cgroup-v1" else "memory.peak"
            self.peak = max(self.peak, _read_int(self.groups[0] / name))
            if self.oom_kills() > self.oom_before:
                self.exceeded_for = "memory"
        summary["peak_mb"] = round(self.peak / (1 << 20), 1)
        if self.exceeded_for:
            summary["exceeded"] = self.exceeded_for
        return summary


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))


def _set_v1_memory(group: Path, memory: int) -> None:
    """cgroup v1 keeps memory <= memory+swap: raising both means the swap limit first, lowering them
    the memory limit first (the other order is EINVAL). A slot's group is reused with other limits."""
    memsw = group / "memory.memsw.limit_in_bytes"
    try:
        _write(group / "memory.limit_in_bytes", memory)
    except OSError:
        _write(memsw, memory)  # raising: only the swap limit was in the way
        _write(group / "memory.limit_in_bytes", memory)
        return
    with contextlib.suppress(OSError):  # no swap accounting on this kernel
        _write(memsw, memory)


def _remove_cgroup(group: Path) -> None:
    for _ in range(50):
        for pid in _read_pids(group / "cgroup.procs"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            import time

            time.sleep(0.01)


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _kv(path: Path) -> dict[str, int]:
    values = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    except OSError:
        pass
    return values


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _process_table() -> dict[int, tuple[int, int, int, int]]:
    """pid -> (ppid, session, uid, rss bytes) of every process visible here."""
    table: dict[int, tuple[int, int, int, int]] = {}
    if not os.path.isdir("/proc/self"):
        return table
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            uid = os.stat(entry.path).st_uid
        except (OSError, IndexError):
            continue
        # After the command name: state ppid pgrp session ... rss is field 24 (index 21 here).
        table[int(entry.name)] = (int(fields[1]), int(fields[3]), uid, int(fields[21]) * _PAGE)
    return table
