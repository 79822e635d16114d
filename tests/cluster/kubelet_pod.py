"""One pod on the test kubelet: its volumes, its containers as local processes, and its status.

Each pod gets a thread that owns it from the first sight to deletion, so no locking is needed
between pods and a slow pod (a probe, a grace period) holds up only itself. The thread polls its
processes every 0.1 s and is woken early by watch events (updates, deletion).

What is imitated, and how (see also README.md, "The test kubelet"):

* containers run `command` + `args` (after `$(VAR)` expansion) with the image ignored; init
  containers run one at a time first, sidecars (init containers with restartPolicy Always) keep
  running beside the main containers and are stopped when those finish;
* volumes are directories under `<pod dir>/volumes/<name>`; mount paths are rewritten to them in
  env values, command, args and workingDir (kubelet_spec.PathRewriter);
* `restartPolicy` with an exponential back-off (CrashLoopBackOff), readiness and liveness probes
  (httpGet, tcpSocket, exec), `activeDeadlineSeconds`, graceful deletion;
* status as the real kubelet reports it: phase, conditions, container states, exit codes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

from . import kubelet_spec as ks
from . import procs
from .kubeapi import SMP, Api, ApiError


def now_iso() -> str:
    """The API's timestamp format (RFC 3339, whole seconds, UTC)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(message: str) -> None:
    """The kubelet's own log line (stdout of the kubelet process, kept in kubelet.log)."""
    print(f"{dt.datetime.now().strftime('%H:%M:%S.%f')[:-3]} {message}", flush=True)


SETPRIV = shutil.which("setpriv")
#: niceness of pod processes (PROCTOR_TEST_POD_NICENESS): the scale benchmark runs pods at 19, so the
#: operator and the control plane are not starved by dozens of worker pods that, in a cluster, run on
#: other nodes
POD_NICENESS = os.environ.get("PROCTOR_TEST_POD_NICENESS", "")


class Spawner:
    """Starts every container process from one long-lived thread.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits. Forking from short-lived
    pod threads would kill containers when their thread ends, so all forks happen here, and the
    kernel kills every container if the kubelet process dies without cleaning up.
    """

    def __init__(self) -> None:
        self._queue: Queue[tuple[Callable[[], Any], Future]] = Queue()
        threading.Thread(target=self._loop, name="spawner", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fn, future = self._queue.get()
            try:
                future.set_result(fn())
            except BaseException as err:
                future.set_exception(err)

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> subprocess.Popen:
        """Popen in a new session (so the process group can be killed as a whole)."""

        def start() -> subprocess.Popen:
            # No preexec_fn: running Python between fork and exec in this many-threaded process can
            # deadlock on a lock another thread held at fork time (it did, after a few dozen pods).
            # setpriv sets the parent-death signal and then execs the container's command.
            executable = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
            if executable is None or not os.access(executable, os.X_OK) or not os.path.isfile(executable):
                raise FileNotFoundError(2, "executable file not found in $PATH", argv[0])
            if not Path(cwd).is_dir():
                raise FileNotFoundError(2, "working directory not found", str(cwd))
            wrapped = [SETPRIV, "--pdeathsig", "KILL", "--", executable, *argv[1:]] if SETPRIV else argv
            if POD_NICENESS:  # pods on other nodes than the control plane's, as far as one machine can
                wrapped = ["nice", "-n", POD_NICENESS, *wrapped]
            with open(log_path, "ab") as out:
                process = subprocess.Popen(
                    wrapped,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                )
            if POD_NICENESS:
                _lower_session_priority(process.pid, POD_NICENESS)
            return process

        future: Future = Future()
        self._queue.put((start, future))
        return future.result()


def _lower_session_priority(pid: int, niceness: str) -> None:
    """With the kernel's autogroups on, each new session is scheduled as one group, and a process's
    nice value only ranks it within its group: a pod at nice 19 in its own session still got as much
    CPU as the API server's whole session. The group's own nice value ranks the group."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(niceness)
    except OSError:  # no autogroups in this kernel (nice alone then ranks the process), or it ended
        pass


class StartError(RuntimeError):
    """The container's process could not be started (reported as the runtime's StartError)."""


@dataclass
class KubeletContext:
    """What every pod worker shares with the kubelet."""

    api: Api
    node_name: str
    root: Path
    server: str
    ca_file: Path
    spawner: Spawner
    base_env: dict[str, str]
    allocatable: dict[str, str]
    max_grace: float = 3.0
    backoff_base: float = 1.0
    backoff_max: float = 10.0
    max_probe_period: float = 2.0
    # Host directories standing in for the image's files: never rewritten by a mount (PathRewriter).
    image_paths: tuple[str, ...] = ()


@dataclass
class Probe:
    """Schedule and counters of one probe of one container."""

    spec: dict[str, Any]
    next_at: float = 0.0
    successes: int = 0
    failures: int = 0

    def period(self, cap: float) -> float:
        return min(float(self.spec.get("periodSeconds") or 10), cap)


@dataclass
class Container:
    """Runtime state of one container (init, sidecar or main)."""

    spec: dict[str, Any]
    kind: str  # "init", "sidecar" or "main"
    proc: subprocess.Popen | None = None
    restart_count: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    started_mono: float = 0.0
    ready: bool = False
    done: bool = False  # terminated and will not run again
    ever_started: bool = False
    exit_code: int | None = None
    next_start: float = 0.0
    readiness: Probe | None = None
    liveness: Probe | None = None
    killed_for: str | None = None
    exec_env: dict[str, str] = field(default_factory=dict)
    exec_cwd: Path | None = None
    rewrite: ks.PathRewriter | None = None

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def running(self) -> bool:
        return self.proc is not None


class PodWorker(threading.Thread):
    """Runs one pod (identified by uid) until it is deleted."""

    def __init__(self, ctx: KubeletContext, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.ctx = ctx
        self.pod = pod
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        self.dir = ctx.root / self.namespace / self.pod_name
        self.cond = threading.Condition()
        self.gone = False
        self.finished = False
        self.terminal: str | None = None  # "Succeeded" / "Failed" once decided
        self.reason: str | None = None
        self.message: str | None = None
        self.start_time: str = (pod.get("status") or {}).get("startTime") or now_iso()
        self.start_mono = time.monotonic()
        self.volumes_ready = False
        self.host_dirs: dict[str, Path] = {}
        self.sa_kubeconfig: Path | None = None
        self.transitions: dict[str, tuple[str, str]] = {}
        self.last_status: str | None = None
        spec = pod["spec"]
        self.restart_policy: str = spec.get("restartPolicy", "Always")
        self.containers: list[Container] = [
            Container(c, "sidecar" if c.get("restartPolicy") == "Always" else "init")
            for c in spec.get("initContainers") or []
        ] + [Container(c, "main") for c in spec["containers"]]
        for c in self.containers:
            if c.kind != "main":
                c.state = {"waiting": {"reason": "PodInitializing"}}
            if c.kind != "init":  # run-to-completion init containers have no probes
                readiness, liveness = c.spec.get("readinessProbe"), c.spec.get("livenessProbe")
                c.readiness = Probe(readiness) if readiness else None
                c.liveness = Probe(liveness) if liveness else None

    # ---- events from the watch -------------------------------------------------------------------

    def update(self, pod: dict[str, Any]) -> None:
        """A newer version of the pod object (from the watch)."""
        with self.cond:
            self.pod = pod
            self.cond.notify()

    def deleted(self) -> None:
        """The pod object is gone from the API."""
        with self.cond:
            self.gone = True
            self.cond.notify()

    def _sleep(self, seconds: float) -> None:
        with self.cond:
            if not self.gone:
                self.cond.wait(seconds)

    def _deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp"))

    # ---- main loop -------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log(f"{self.namespace}/{self.pod_name}: worker crashed:\n{traceback.format_exc()}")
        finally:
            self.kill_all(grace=1.0)
            self.finished = True

    def _run(self) -> None:
        phase = (self.pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            # Already finished before this kubelet saw it (a kubelet restart): nothing to run.
            self.terminal = phase
            self._wait_for_deletion()
            return
        self._make_dir()
        self.patch_status()
        while not self.volumes_ready:
            if self.gone:
                return
            if self._deleting():
                self._terminate_and_delete()
                return
            try:
                self.prepare_volumes()
                self.volumes_ready = True
            except (LookupError, ApiError, OSError) as err:
                for c in self.containers:
                    c.state = {"waiting": {"reason": "ContainerCreating", "message": str(err)[:300]}}
                self.patch_status()
                self._sleep(1.0)
        while True:
            if self.gone:
                return
            if self._deleting():
                self._terminate_and_delete()
                return
            if self.terminal:
                self._wait_for_deletion()
                return
            self.step()
            self.patch_status()
            self._sleep(0.1)

    def _wait_for_deletion(self) -> None:
        """A finished pod stays until someone deletes it; then remove it at once."""
        while not self.gone:
            if self._deleting():
                self._delete_now()
                return
            self._sleep(5.0)

    # ---- one tick ---------------------------------------------------------------------------------

    def step(self) -> None:
        """Reap exits, start what is due, probe, and decide whether the pod is finished."""
        now = time.monotonic()
        self._check_deadline(now)
        if self.terminal:
            return
        for c in self.containers:
            if c.proc is not None:
                code = c.proc.poll()
                if code is not None:
                    self._exited(c, 128 - code if code < 0 else code, message=self._termination_message(c))
        if self.terminal:  # an init container failed for good: stop the sidecars, and done
            self.kill_all(grace=self._grace())
            return

        init_done = True
        for c in self.containers:
            if c.kind == "main":
                break
            if c.kind == "sidecar":
                if not c.running and not c.done and now >= c.next_start:
                    self._start(c)
                if not c.ever_started:
                    init_done = False
                    break
                continue
            if not c.done:
                init_done = False
                if not c.running and now >= c.next_start:
                    self._start(c)
                break
        if init_done:
            for c in self.containers:
                if c.kind == "main" and not c.running and not c.done and now >= c.next_start:
                    self._start(c)

        for c in self.containers:
            if c.running:
                self._probe(c, now)

        mains = [c for c in self.containers if c.kind == "main"]
        if init_done and all(c.done for c in mains):
            self._stop_sidecars()
            failed = any(c.exit_code != 0 for c in mains)
            self.terminal = "Failed" if failed else "Succeeded"

    def _check_deadline(self, now: float) -> None:
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        if deadline is None or self.terminal:
            return
        started = dt.datetime.strptime(self.start_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        if dt.datetime.now(dt.UTC) - started >= dt.timedelta(seconds=int(deadline)):
            log(f"{self.namespace}/{self.pod_name}: activeDeadlineSeconds {deadline} exceeded")
            self.kill_all(grace=self._grace())
            self.terminal = "Failed"
            self.reason = "DeadlineExceeded"
            self.message = f"Pod was active on the node longer than the specified deadline ({deadline}s)"

    def _backoff(self, restarts: int) -> float:
        return min(self.ctx.backoff_base * 2 ** max(restarts - 1, 0), self.ctx.backoff_max)

    def _exited(self, c: Container, code: int, reason: str | None = None, message: str | None = None) -> None:
        """Record a container's exit and decide, per restart policy, whether it runs again."""
        pid = c.proc.pid if c.proc is not None else None
        if pid is not None:
            # A container ends with its main process: nothing it forked survives (like a PID namespace).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        c.proc = None
        c.ready = False
        c.exit_code = code
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": reason or ("Completed" if code == 0 else "Error"),
            "startedAt": c.started_at or now_iso(),
            "finishedAt": now_iso(),
        }
        if pid is not None:
            terminated["containerID"] = f"proctor-test://{pid}"
        if message:
            terminated["message"] = message
        log(f"{self.namespace}/{self.pod_name}/{c.name}: exited {code} ({terminated['reason']})")
        if c.kind == "sidecar":
            restart = not self.terminal
        elif c.kind == "init":
            restart = code != 0 and self.restart_policy != "Never"
            if code == 0:
                c.done = True
            elif not restart:
                c.done = True
                self.terminal = "Failed"
        else:
            restart = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)
            if not restart:
                c.done = True
        if restart and not self._deleting():
            c.last_state = {"terminated": terminated}
            c.restart_count += 1
            delay = self._backoff(c.restart_count)
            c.next_start = time.monotonic() + delay
            c.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:.0f}s restarting failed container={c.name} "
                    f"pod={self.pod_name}_{self.namespace}({self.uid})",
                }
            }
        else:
            c.state = {"terminated": terminated}

    # ---- processes -------------------------------------------------------------------------------

    def _start(self, c: Container) -> None:
        try:
            argv, env, cwd, rewrite = self._exec_spec(c)
        except StartError as err:
            self._exited(c, 128, "StartError", str(err))
            return
        except (LookupError, ApiError, ValueError) as err:
            c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(err)[:300]}}
            c.next_start = time.monotonic() + 1.0
            return
        c.exec_env, c.exec_cwd, c.rewrite = env, cwd, rewrite
        log_dir = self.dir / "logs" / c.name
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{c.restart_count}.log"
        c.started_at = now_iso()
        c.started_mono = time.monotonic()
        try:
            c.proc = self.ctx.spawner.spawn(argv, env, cwd, log_path)
        except OSError as err:
            with open(log_path, "ab") as out:
                out.write(f"test kubelet: cannot start {argv!r}: {err}\n".encode())
            self._exited(c, 128, "StartError", f"failed to start {argv[0]!r}: {err}")
            return
        c.ever_started = True
        c.ready = c.readiness is None
        for probe in (c.readiness, c.liveness):
            if probe:
                probe.next_at = c.started_mono + float(probe.spec.get("initialDelaySeconds") or 0)
                probe.successes = probe.failures = 0
        c.state = {"running": {"startedAt": c.started_at}}
        pid_dir = self.dir / "pids"
        pid_dir.mkdir(exist_ok=True)
        (pid_dir / c.name).write_text(str(c.proc.pid))
        with open(pid_dir / "all", "a") as all_pids:
            # With its start time: teardown checks must never take a recycled pid for this one.
            all_pids.write(f"{c.proc.pid} {procs.start_time(c.proc.pid) or ''}\n")
        log(f"{self.namespace}/{self.pod_name}/{c.name}: started pid {c.proc.pid}: {argv}")

    def _exec_spec(self, c: Container) -> tuple[list[str], dict[str, str], Path, ks.PathRewriter]:
        """The argv, environment and cwd for one start of a container."""
        spec = c.spec
        pod = self.pod
        base = dict(self.ctx.base_env)
        base["HOSTNAME"] = pod["spec"].get("hostname") or self.pod_name
        api_port = self.ctx.server.rsplit(":", 1)[1]
        base.update(
            KUBERNETES_SERVICE_HOST="127.0.0.1",
            KUBERNETES_SERVICE_PORT=api_port,
            KUBERNETES_SERVICE_PORT_HTTPS=api_port,
            KUBERNETES_PORT=f"tcp://127.0.0.1:{api_port}",
        )
        raw = ks.build_env(pod, spec, base, self._lookup, self.ctx.allocatable)
        mounts = self._mounts(c, raw)
        rewrite = ks.PathRewriter(mounts, keep=self.ctx.image_paths)
        words = [ks.expand(w, raw) for w in [*(spec.get("command") or []), *(spec.get("args") or [])]]
        if not words:
            raise ValueError(
                f"container {c.name} has no command or args; the test kubelet ignores images and "
                "needs an explicit command"
            )
        argv = [rewrite(w) for w in words]
        env = {k: (v if base.get(k) == v else rewrite(v)) for k, v in raw.items()}
        if self.sa_kubeconfig and ks.SA_MOUNT_PATH in {m.rstrip("/") for m in mounts}:
            env.setdefault("KUBECONFIG", str(self.sa_kubeconfig))
        if "/" not in argv[0]:
            found = shutil.which(argv[0], path=self.ctx.base_env.get("PATH"))
            if found is None:
                raise StartError(f'exec: "{argv[0]}": executable file not found in $PATH')
            argv[0] = found
        cwd = Path(rewrite(spec["workingDir"])) if spec.get("workingDir") else self.dir
        cwd.mkdir(parents=True, exist_ok=True)
        return argv, env, cwd, rewrite

    def _mounts(self, c: Container, env: dict[str, str]) -> dict[str, Path]:
        mounts: dict[str, Path] = {}
        for mount in c.spec.get("volumeMounts") or []:
            base = self.host_dirs.get(mount["name"])
            if base is None:
                raise LookupError(f"volumeMount {mount['name']!r} names no volume of the pod")
            sub = mount.get("subPath") or ks.expand(mount.get("subPathExpr") or "", env)
            target = base / sub if sub else base
            if sub and not target.exists():
                target.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = target
        # The termination message file: a host file per container, read when it exits (as the kubelet
        # mounts one into the container and reads it back).
        message = self._termination_file(c)
        message.parent.mkdir(parents=True, exist_ok=True)
        message.unlink(missing_ok=True)
        mounts[c.spec.get("terminationMessagePath") or "/dev/termination-log"] = message
        return mounts

    def _termination_file(self, c: Container) -> Path:
        return self.dir / "termination" / c.name

    def _termination_message(self, c: Container) -> str | None:
        """What the container wrote to its termination message file: at most 4096 bytes, as the kubelet
        keeps (`terminationMessagePolicy: File`)."""
        try:
            with open(self._termination_file(c), "rb") as handle:
                text = handle.read(4096).decode(errors="replace")
        except OSError:
            return None
        return text or None

    def _signal(self, c: Container, sig: int) -> None:
        if c.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(c.proc.pid, sig)

    def kill_containers(self, containers: list[Container], grace: float, reason: str | None = None) -> None:
        """SIGTERM the process groups, wait up to `grace` seconds, SIGKILL what is left, reap."""
        # Take the Popen objects once: at kubelet shutdown this runs beside the pod's own thread.
        running = [(c, c.proc) for c in containers if c.proc is not None]
        for c, proc in running:
            c.killed_for = reason
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0))
        for c, proc in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
            pid = proc.pid
            c.proc = None
            c.ready = False
            c.exit_code = 128 - code if code < 0 else code
            c.done = True
            c.state = {
                "terminated": {
                    "exitCode": c.exit_code,
                    "reason": "Completed" if c.exit_code == 0 else "Error",
                    "startedAt": c.started_at or now_iso(),
                    "finishedAt": now_iso(),
                    "containerID": f"proctor-test://{pid}",
                }
            }

    def kill_all(self, grace: float) -> None:
        """Stop every container of the pod (deletion, deadline, kubelet shutdown).

        A container waiting to restart ends with its last termination as its state; one that never
        started stays `waiting` (as with the real kubelet, so no invented exit code can match a
        Job's podFailurePolicy).
        """
        self.kill_containers(self.containers, grace)
        for c in self.containers:
            if not c.done:
                c.done = True
                if "waiting" in c.state and "terminated" in c.last_state:
                    c.state = c.last_state

    def _stop_sidecars(self) -> None:
        sidecars = [c for c in self.containers if c.kind == "sidecar"]
        self.kill_containers(sidecars, grace=self._grace())
        for c in sidecars:
            c.done = True
            if "waiting" in c.state:
                c.state = {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now_iso()}}

    def _grace(self) -> float:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return min(float(grace), self.ctx.max_grace)

    # ---- deletion --------------------------------------------------------------------------------

    def _terminate_and_delete(self) -> None:
        """Graceful deletion: stop the processes, report the final status, remove the object."""
        if not self.terminal:
            log(f"{self.namespace}/{self.pod_name}: deleting: stopping containers")
            self.kill_all(grace=self._grace())
            mains = [c for c in self.containers if c.kind == "main"]
            self.terminal = "Succeeded" if all(c.exit_code == 0 for c in mains) else "Failed"
            self.patch_status()
        self._delete_now()

    def _delete_now(self) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}"
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        try:
            self.ctx.api.call("DELETE", path, body)
        except ApiError as err:
            if err.status not in (404, 409):
                log(f"{self.namespace}/{self.pod_name}: final delete failed: {err}")

    # ---- volumes ---------------------------------------------------------------------------------

    def _make_dir(self) -> None:
        uid_file = self.dir / "uid"
        if self.dir.exists() and (not uid_file.exists() or uid_file.read_text() != self.uid):
            # An older pod of the same name: keep its files (logs!) beside, under .old/.
            old = self.ctx.root / self.namespace / ".old" / f"{self.pod_name}-{time.time_ns()}"
            old.parent.mkdir(parents=True, exist_ok=True)
            self.dir.rename(old)
        (self.dir / "volumes").mkdir(parents=True, exist_ok=True)
        uid_file.write_text(self.uid)
        (self.dir / "pod.json").write_text(json.dumps(self.pod, indent=1))

    def _lookup(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        plural = "configmaps" if kind == "configmap" else "secrets"
        obj = self.ctx.api.get(f"/api/v1/namespaces/{self.namespace}/{plural}/{name}", ok_missing=True)
        if obj is None:
            if optional:
                return None
            raise LookupError(f'{kind} "{name}" not found')
        return ks.decode_data(obj, secret=kind == "secret")

    def _write_items(
        self, directory: Path, data: dict[str, bytes] | None, items: list[dict] | None, what: str
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if data is None:
            return
        if items:
            for item in items:
                if item["key"] not in data:
                    raise LookupError(f"{what}: key {item['key']!r} not found")
                target = directory / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data[item["key"]])
        else:
            for key, value in data.items():
                (directory / key).write_bytes(value)

    def _token(self, audience: str | None, expiration: int | None) -> str:
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        spec: dict[str, Any] = {
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": self.pod_name, "uid": self.uid},
        }
        if audience:
            spec["audiences"] = [audience]
        if expiration:
            spec["expirationSeconds"] = int(expiration)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        result = self.ctx.api.call(
            "POST", f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token", body
        )
        return result["status"]["token"]

    def _downward_items(self, directory: Path, items: list[dict]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for item in items:
            if "fieldRef" in item:
                value = ks.field_value(self.pod, item["fieldRef"]["fieldPath"])
            else:
                value = ks.resource_value(self.pod, item["resourceFieldRef"], None, self.ctx.allocatable)
            target = directory / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(value)

    def prepare_volumes(self) -> None:
        """Create each volume's host directory and fill it (ConfigMap/Secret keys, tokens, ...)."""
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            directory = self.dir / "volumes" / name
            if "hostPath" in volume:
                directory = Path(volume["hostPath"]["path"])
                if volume["hostPath"].get("type") in ("DirectoryOrCreate", None, ""):
                    directory.mkdir(parents=True, exist_ok=True)
            elif "configMap" in volume:
                src = volume["configMap"]
                data = self._lookup("configmap", src["name"], bool(src.get("optional")))
                self._write_items(directory, data, src.get("items"), f"configMap {src['name']}")
            elif "secret" in volume:
                src = volume["secret"]
                data = self._lookup("secret", src["secretName"], bool(src.get("optional")))
                self._write_items(directory, data, src.get("items"), f"secret {src['secretName']}")
            elif "downwardAPI" in volume:
                self._downward_items(directory, volume["downwardAPI"].get("items") or [])
            elif "projected" in volume:
                directory.mkdir(parents=True, exist_ok=True)
                for source in volume["projected"].get("sources") or []:
                    if "serviceAccountToken" in source:
                        tok = source["serviceAccountToken"]
                        token = self._token(tok.get("audience"), tok.get("expirationSeconds"))
                        (directory / tok["path"]).write_text(token)
                        if not tok.get("audience"):
                            self._write_sa_kubeconfig(token)
                    elif "configMap" in source:
                        src = source["configMap"]
                        data = self._lookup("configmap", src["name"], bool(src.get("optional")))
                        self._write_items(directory, data, src.get("items"), f"configMap {src['name']}")
                    elif "secret" in source:
                        src = source["secret"]
                        data = self._lookup("secret", src["name"], bool(src.get("optional")))
                        self._write_items(directory, data, src.get("items"), f"secret {src['name']}")
                    elif "downwardAPI" in source:
                        self._downward_items(directory, source["downwardAPI"].get("items") or [])
            else:
                # emptyDir, and anything a host cannot provide (PVCs, CSI, ...): a plain directory.
                directory.mkdir(parents=True, exist_ok=True)
            self.host_dirs[name] = directory

    def _write_sa_kubeconfig(self, token: str) -> None:
        """A kubeconfig with the pod's ServiceAccount token: in-cluster config reads fixed paths under
        /var/run/secrets that a host process cannot have, so clients find this via KUBECONFIG."""
        ca = self.dir / "ca.crt"
        shutil.copyfile(self.ctx.ca_file, ca)
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        user = f"system:serviceaccount:{self.namespace}:{sa}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {"server": self.ctx.server, "certificate-authority": str(ca)},
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {
                    "name": "in-cluster",
                    "context": {"cluster": "in-cluster", "user": user, "namespace": self.namespace},
                }
            ],
            "current-context": "in-cluster",
        }
        path = self.dir / "kubeconfig"
        path.write_text(json.dumps(config, indent=1))
        path.chmod(0o600)
        self.sa_kubeconfig = path

    # ---- probes ----------------------------------------------------------------------------------

    def _probe(self, c: Container, now: float) -> None:
        for probe, is_liveness in ((c.readiness, False), (c.liveness, True)):
            if probe is None or now < probe.next_at:
                continue
            probe.next_at = now + probe.period(self.ctx.max_probe_period)
            ok = self._run_probe(probe.spec, c)
            if ok:
                probe.successes += 1
                probe.failures = 0
            else:
                probe.failures += 1
                probe.successes = 0
            if is_liveness:
                if probe.failures >= int(probe.spec.get("failureThreshold") or 3):
                    log(f"{self.namespace}/{self.pod_name}/{c.name}: liveness probe failed; killing")
                    self._signal(c, signal.SIGKILL)
            elif ok and probe.successes >= int(probe.spec.get("successThreshold") or 1):
                c.ready = True
            elif not ok and probe.failures >= int(probe.spec.get("failureThreshold") or 3):
                c.ready = False

    def _port(self, c: Container, port: Any) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in c.spec.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"no container port named {port!r}")

    def _run_probe(self, spec: dict[str, Any], c: Container) -> bool:
        timeout = float(spec.get("timeoutSeconds") or 1)
        try:
            if "httpGet" in spec:
                get = spec["httpGet"]
                scheme = (get.get("scheme") or "HTTP").lower()
                host, port = get.get("host") or "127.0.0.1", self._port(c, get["port"])
                url = f"{scheme}://{host}:{port}{get.get('path') or '/'}"
                req = urllib.request.Request(url)
                for header in get.get("httpHeaders") or []:
                    req.add_header(header["name"], header["value"])
                ctx = ssl._create_unverified_context() if scheme == "https" else None
                try:
                    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
                        return 200 <= resp.status < 400
                except urllib.error.HTTPError as err:
                    return 200 <= err.code < 400
            if "tcpSocket" in spec:
                sock = spec["tcpSocket"]
                with socket.create_connection(
                    (sock.get("host") or "127.0.0.1", self._port(c, sock["port"])), timeout=timeout
                ):
                    return True
            if "exec" in spec:
                rewrite = c.rewrite or ks.PathRewriter({})
                argv = [rewrite(ks.expand(w, c.exec_env)) for w in spec["exec"].get("command") or []]
                if argv and "/" not in argv[0]:
                    argv[0] = shutil.which(argv[0], path=self.ctx.base_env.get("PATH")) or argv[0]
                result = subprocess.run(
                    argv,
                    env=c.exec_env,
                    cwd=c.exec_cwd,
                    timeout=timeout,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                return result.returncode == 0
            return True  # grpc and unknown probe kinds: not imitated, treated as passing
        except Exception:
            return False

    # ---- status ----------------------------------------------------------------------------------

    def _condition(self, kind: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
        status = "True" if ok else "False"
        previous = self.transitions.get(kind)
        if previous is None or previous[0] != status:
            self.transitions[kind] = (status, now_iso())
        cond: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": self.transitions[kind][1],
        }
        if reason and not ok:
            cond["reason"] = reason
        return cond

    def _container_status(self, c: Container) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": c.name,
            "image": c.spec.get("image") or "",
            "imageID": f"proctor-test://{c.spec.get('image') or ''}",
            "ready": c.ready,
            "started": c.running,
            "restartCount": c.restart_count,
            "state": c.state,
            "lastState": c.last_state,
        }
        if c.proc is not None:
            status["containerID"] = f"proctor-test://{c.proc.pid}"
        return status

    def status(self) -> dict[str, Any]:
        """The pod status as the real kubelet would report it now."""
        inits = [c for c in self.containers if c.kind != "main"]
        mains = [c for c in self.containers if c.kind == "main"]
        init_done = all(c.done for c in inits if c.kind == "init") and all(
            c.ever_started for c in inits if c.kind == "sidecar"
        )
        if self.terminal:
            phase = self.terminal
        elif init_done and any(c.ever_started for c in mains):
            phase = "Running"
        else:
            phase = "Pending"
        ready = bool(mains) and all(c.ready for c in mains) and not self.terminal
        not_ready_reason = "PodCompleted" if self.terminal else "ContainersNotReady"
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "conditions": [
                self._condition("PodReadyToStartContainers", self.volumes_ready),
                self._condition("Initialized", init_done or bool(self.terminal), "ContainersNotInitialized"),
                self._condition("ContainersReady", ready, not_ready_reason),
                self._condition("Ready", ready, not_ready_reason),
            ],
            "containerStatuses": [self._container_status(c) for c in mains],
        }
        if inits:
            status["initContainerStatuses"] = [self._container_status(c) for c in inits]
        if self.reason:
            status["reason"] = self.reason
            status["message"] = self.message
        return status

    def patch_status(self) -> None:
        """PATCH the status subresource when it changed (strategic merge: conditions merge by type)."""
        status = self.status()
        encoded = json.dumps(status, sort_keys=True)
        if encoded == self.last_status:
            return
        try:
            self.ctx.api.call(
                "PATCH",
                f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}/status",
                {"metadata": {"uid": self.uid}, "status": status},
                content_type=SMP,
            )
            self.last_status = encoded
        except ApiError as err:
            if err.status == 404:
                self.deleted()
            else:
                log(f"{self.namespace}/{self.pod_name}: status patch failed: {err}")
