"""The TEST KUBELET: a test double for a node's kubelet and container runtime.

No container engine runs on the test machines, yet the operator under test creates Jobs and
Deployments whose pods must really run. This process plays the node: it registers a Ready Node,
keeps its heartbeat and Lease, watches the pods the scheduler binds to it, and runs each container's
`command` + `args` as a local process (the image is ignored; the executable must exist on this host's
PATH, so `python -m ...` gets the Python that started the kubelet). It reflects everything back
into the pod status the way the real kubelet does, so the controllers (Job, ReplicaSet, ...) and the
operator see genuine pod lifecycles. The per-pod behaviour is in kubelet_pod.py; the rules for env,
downward API and path rewriting in kubelet_spec.py. What it cannot imitate is listed in README.md.

Run as a subprocess by the fixtures (`python -m tests.cluster.kubelet ...`), so it survives the
developer command and never competes with the tests for the GIL. Files, per pod, under
`<root>/<namespace>/<pod>/`: `volumes/<name>/`, `logs/<container>/<restart>.log`, `pids/<container>`,
`kubeconfig` (the ServiceAccount's), `pod.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from .kubeapi import SMP, Api, ApiError
from .kubelet_pod import KubeletContext, PodWorker, Spawner, log, now_iso
from .procs import set_pdeathsig

NODE_NAME = "proctor-test-node"
# The code under test: pods run it in place of an image's files (see --image-path).
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
#: Variables of the kubelet's own environment that containers inherit (plus PROCTOR_KUBELET_PASSTHROUGH_ENV).
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")


class Kubelet:
    """Node registration, heartbeat, the pod watch, and one PodWorker per pod."""

    def __init__(self, ctx: KubeletContext, capacity: dict[str, str], log_port: int = 0) -> None:
        self.ctx = ctx
        self.capacity = capacity
        self.log_port = log_port  # the container log endpoint the API server reaches for pods/log
        self.workers: dict[str, PodWorker] = {}
        self.stopping = threading.Event()

    # ---- node ------------------------------------------------------------------------------------

    def _conditions(self) -> list[dict[str, Any]]:
        now = now_iso()
        conditions = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", "True", "KubeletReady"),
        ]
        return [
            {
                "type": t,
                "status": s,
                "reason": r,
                "message": "proctor test kubelet",
                "lastHeartbeatTime": now,
                "lastTransitionTime": self.started,
            }
            for t, s, r in conditions
        ]

    def register(self) -> None:
        """Create the Node (or refresh an existing one) as Ready, untainted, schedulable."""
        self.started = now_iso()
        name = self.ctx.node_name
        status = {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": self._conditions(),
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.log_port}},
            "nodeInfo": {
                "machineID": uuid.uuid4().hex,
                "systemUUID": str(uuid.uuid4()),
                "bootID": str(uuid.uuid4()),
                "kernelVersion": platform.release(),
                "osImage": "proctor test kubelet",
                "containerRuntimeVersion": "proctor-test://1",
                "kubeletVersion": "v0.0.0-proctor-test",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "proctor-test",
            "proctor.dev/test-kubelet": "true",
        }
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {},
            "status": status,
        }
        try:
            self.ctx.api.call("POST", "/api/v1/nodes", node)
        except ApiError as err:
            if err.status != 409:
                raise
            self.ctx.api.call(
                "PATCH",
                f"/api/v1/nodes/{name}",
                {"metadata": {"labels": labels}, "spec": {"taints": None, "unschedulable": None}},
                content_type=SMP,
            )
        # Status on create is kept, but an existing Node's needs the subresource.
        self.ctx.api.call("PATCH", f"/api/v1/nodes/{name}/status", {"status": status}, content_type=SMP)
        self._renew_lease()

    def _renew_lease(self) -> None:
        name = self.ctx.node_name
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        now = dt_micro()
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}
        try:
            self.ctx.api.call("PATCH", f"{path}/{name}", {"spec": spec}, content_type=SMP)
        except ApiError as err:
            if err.status != 404:
                raise
            node = self.ctx.api.get(f"/api/v1/nodes/{name}")
            owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
            self.ctx.api.call(
                "POST",
                path,
                {
                    "metadata": {"name": name, "ownerReferences": [owner]},
                    "spec": {**spec, "acquireTime": now},
                },
            )

    def heartbeat(self) -> None:
        """Every 10 s: the Ready condition's heartbeat and the node Lease."""
        while not self.stopping.wait(10):
            try:
                self.ctx.api.call(
                    "PATCH",
                    f"/api/v1/nodes/{self.ctx.node_name}/status",
                    {"status": {"conditions": self._conditions()}},
                    content_type=SMP,
                )
                self._renew_lease()
            except Exception as err:
                log(f"heartbeat failed: {err}")

    # ---- pods ------------------------------------------------------------------------------------

    def _dispatch(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.deleted()
                del self.workers[uid]
            return
        if worker is None:
            worker = PodWorker(self.ctx, pod)
            self.workers[uid] = worker
            worker.start()
        else:
            worker.update(pod)

    def _list(self) -> str:
        """List this node's pods, reconcile workers with it, return the list's resourceVersion."""
        result = self.ctx.api.get("/api/v1/pods", fieldSelector=f"spec.nodeName={self.ctx.node_name}")
        seen = set()
        for pod in result["items"]:
            seen.add(pod["metadata"]["uid"])
            self._dispatch("MODIFIED", pod)
        for uid in list(self.workers):
            if uid not in seen:
                self.workers[uid].deleted()
                del self.workers[uid]
        return result["metadata"]["resourceVersion"]

    def watch_pods(self, ready_file: Path | None) -> None:
        """List, then watch from the list's resourceVersion; re-list whenever the watch breaks."""
        resource_version = None
        while not self.stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list()
                    if ready_file is not None:
                        ready_file.write_text(str(os.getpid()))
                        ready_file = None
                for event in self.ctx.api.watch(
                    "/api/v1/pods", resource_version, fieldSelector=f"spec.nodeName={self.ctx.node_name}"
                ):
                    obj = event["object"]
                    resource_version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._dispatch(event["type"], obj)
            except ApiError as err:
                if err.status != 410:
                    log(f"pod watch failed: {err}")
                    time.sleep(0.5)
                resource_version = None
            except Exception as err:
                if self.stopping.is_set():
                    return
                log(f"pod watch broke ({type(err).__name__}: {err}); re-listing")
                time.sleep(0.5)
                resource_version = None

    def shutdown(self) -> None:
        """Stop every container (SIGTERM, a short grace, SIGKILL). The API is left as it is."""
        self.stopping.set()
        workers = list(self.workers.values())
        threads = [threading.Thread(target=w.kill_all, args=(2.0,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)


def tail_log(text: str, tail_lines: int | None, limit_bytes: int | None) -> str:
    """The end of a log as the kubelet cuts it: the last `tail_lines` lines, then at most the last
    `limit_bytes` bytes."""
    if tail_lines is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail_lines:]) if tail_lines > 0 else ""
    if limit_bytes is not None:
        data = text.encode()
        text = data[-limit_bytes:].decode(errors="replace") if len(data) > limit_bytes else text
    return text


def serve_container_logs(root: Path) -> int:
    """The kubelet's container log endpoint, which the API server proxies `pods/log` (`kubectl logs`)
    to: HTTPS on 127.0.0.1, `GET /containerLogs/<namespace>/<pod>/<container>?previous=&tailLines=&
    limitBytes=`, from the pods' log files. Returns its port."""
    import ssl
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from .pki import self_signed

    files = KubeletHandle(root)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "containerLogs":
                self.send_error(404)
                return
            _, namespace, pod, container = parts
            query = dict(urllib.parse.parse_qsl(url.query))
            if not files.pod_dir(namespace, pod).exists():
                self.send_error(404, f"pod {namespace}/{pod} is not on this node")
                return
            previous = query.get("previous", "false").lower() == "true"
            text = files.pod_log(namespace, pod, container, previous=previous)
            number = lambda key: int(query[key]) if key in query else None  # noqa: E731
            body = tail_log(text, number("tailLines"), number("limitBytes")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    cert, key = self_signed(root / "kubelet-serving", "proctor-test-kubelet")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="container-logs", daemon=True).start()
    return server.server_address[1]


def dt_micro() -> str:
    """MicroTime format, which Lease times require."""
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_REAPER = """
import os, signal, sys, pathlib
root, kubelet = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def started(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
def reap(*_):
    for listing in root.glob("**/pids/all"):
        for line in listing.read_text().splitlines():
            pid, _, start = line.partition(" ")
            now = started(pid)
            if now is not None and start.strip() and now != start.strip():
                continue  # the pid was recycled: another process, not ours to kill
            try:
                os.killpg(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    sys.exit(0)
signal.signal(signal.SIGTERM, reap)
if os.getppid() != kubelet:
    reap()
while True:
    signal.pause()
"""


def start_reaper(root: Path) -> subprocess.Popen:
    """A helper that SIGKILLs every container's process group when the kubelet dies.

    Containers get PR_SET_PDEATHSIG themselves, but what *they* fork does not; if the kubelet is
    killed outright (a SIGKILLed pytest takes it down the same way) nobody would be left to kill
    those. The reaper is told of the kubelet's death by its own PDEATHSIG (SIGTERM, which it
    handles) and lives in its own session, so stopping the kubelet's process group gently does not
    trigger it early.
    """
    return subprocess.Popen(
        [sys.executable, "-c", _REAPER, str(root), str(os.getpid())],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: set_pdeathsig(signal.SIGTERM),
    )


def base_env() -> dict[str, str]:
    """The part of the kubelet's own environment that containers inherit."""
    names = list(PASSTHROUGH_ENV)
    names += [n for n in os.environ.get("PROCTOR_KUBELET_PASSTHROUGH_ENV", "").split(",") if n]
    env = {n: os.environ[n] for n in names if n in os.environ}
    env.setdefault("PATH", os.defpath)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster.kubelet", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--server", required=True)
    parser.add_argument("--token-file", required=True, help="file holding the bearer token")
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--root", required=True, help="directory for pod directories")
    parser.add_argument("--node-name", default=NODE_NAME)
    parser.add_argument("--capacity", default=json.dumps(DEFAULT_CAPACITY), help="JSON resource map")
    parser.add_argument("--max-grace", type=float, default=3.0, help="cap on terminationGracePeriodSeconds")
    parser.add_argument("--backoff-base", type=float, default=1.0, help="first restart back-off, seconds")
    parser.add_argument("--backoff-max", type=float, default=10.0)
    parser.add_argument("--max-probe-period", type=float, default=2.0, help="cap on probe periodSeconds")
    parser.add_argument(
        "--image-path",
        action="append",
        help="host directory standing in for the image's own files, never shadowed by a volume mount "
        "(repeatable; default: the repository and this Python's environment)",
    )
    args = parser.parse_args(argv)

    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    capacity = json.loads(args.capacity)
    ctx = KubeletContext(
        api=Api(args.server, Path(args.token_file).read_text().strip(), args.ca_file),
        node_name=args.node_name,
        root=root,
        server=args.server,
        ca_file=Path(args.ca_file),
        spawner=Spawner(),
        base_env=base_env(),
        allocatable=capacity,
        max_grace=args.max_grace,
        backoff_base=args.backoff_base,
        backoff_max=args.backoff_max,
        max_probe_period=args.max_probe_period,
        image_paths=tuple(args.image_path or (str(REPO_ROOT), sys.prefix)),
    )
    start_reaper(root)
    kubelet = Kubelet(ctx, capacity, log_port=serve_container_logs(root))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())

    for attempt in range(100):
        try:
            kubelet.register()
            break
        except Exception as err:
            if attempt == 99:
                raise
            log(f"registering node: {err}; retrying")
            time.sleep(0.2)
    log(f"node {args.node_name} registered")
    threading.Thread(target=kubelet.heartbeat, name="heartbeat", daemon=True).start()
    ready_file = root / "kubelet.ready"
    with contextlib.suppress(FileNotFoundError):
        ready_file.unlink()
    threading.Thread(target=kubelet.watch_pods, args=(ready_file,), name="watch", daemon=True).start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        log("shutting down: stopping all containers")
        try:
            kubelet.shutdown()
        except Exception:
            traceback.print_exc()
        with contextlib.suppress(FileNotFoundError):
            ready_file.unlink()
    return 0


# ---- the fixture side ----------------------------------------------------------------------------


class KubeletHandle:
    """What tests get as `k8s.kubelet`: the node's name and the pods' files on disk."""

    def __init__(self, root: Path, node_name: str = NODE_NAME, server: Any = None) -> None:
        self.root = Path(root)
        self.node_name = node_name
        self.server = server  # procs.Server of the kubelet process (None when loaded from state)

    def pod_dir(self, namespace: str, name: str) -> Path:
        """The pod's working directory (volumes/, logs/, pids/ beneath it)."""
        return self.root / namespace / name

    def pod_log(self, namespace: str, name: str, container: str | None = None, previous: bool = False) -> str:
        """A container's output (stdout and stderr together) from its latest (or previous) start.

        `container` defaults to the pod's first container. Returns "" before the container ran.
        """
        pod_dir = self.pod_dir(namespace, name)
        if container is None:
            try:
                pod = json.loads((pod_dir / "pod.json").read_text())
                container = pod["spec"]["containers"][0]["name"]
            except (OSError, ValueError, KeyError, IndexError):
                return ""
        log_dir = pod_dir / "logs" / container
        runs = sorted((int(p.stem) for p in log_dir.glob("*.log")), reverse=True) if log_dir.exists() else []
        index = 1 if previous else 0
        if len(runs) <= index:
            return ""
        return (log_dir / f"{runs[index]}.log").read_text(errors="replace")

    def pod_pids(self, namespace: str, name: str) -> dict[str, int]:
        """The process id of each container's latest start."""
        pid_dir = self.pod_dir(namespace, name) / "pids"
        if not pid_dir.exists():
            return {}
        return {p.name: int(p.read_text()) for p in pid_dir.iterdir() if p.name != "all"}

    def all_pids(self) -> list[int]:
        """Every container process this kubelet started that is still its own or left its process group
        behind (to check none outlives it); a pid since recycled by another process is left out."""
        from .procs import pid_records, still_ours

        pids: list[int] = []
        for path in self.root.glob("**/pids/all"):
            pids += [pid for pid, started in pid_records(path.read_text()) if still_ours(pid, started)]
        return pids


def start(
    root: Path,
    server: str,
    token: str,
    ca_file: Path,
    node_name: str = NODE_NAME,
    die_with_parent: bool = True,
    log_path: Path | None = None,
) -> KubeletHandle:
    """Start the test kubelet process (returns at once; see wait_ready)."""
    from .procs import Server

    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (root / "kubelet.ready").unlink()
    token_file = root.parent / "kubelet.token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    # `python -m` from the repository root finds tests.cluster without touching PYTHONPATH, which
    # the pods inherit unchanged.
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    # Containers inherit the kubelet's PATH; put this interpreter's directory first so a pod's
    # `python` is the Python running the tests (the one with the project's dependencies).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    server_proc = Server(
        "test-kubelet",
        [
            sys.executable,
            "-m",
            "tests.cluster.kubelet",
            f"--server={server}",
            f"--token-file={token_file}",
            f"--ca-file={ca_file}",
            f"--root={root}",
            f"--node-name={node_name}",
        ],
        log_path or root.parent / "kubelet.log",
        env=env,
        cwd=repo,
        die_with_parent=die_with_parent,
    )
    return KubeletHandle(root, node_name, server_proc)


def wait_ready(handle: KubeletHandle, timeout: float = 30) -> None:
    """Wait until the kubelet has registered its node and started watching pods."""
    from .procs import wait_until

    servers = [handle.server] if handle.server is not None else []
    wait_until("test kubelet", (handle.root / "kubelet.ready").exists, timeout, servers)


if __name__ == "__main__":
    sys.exit(main())
