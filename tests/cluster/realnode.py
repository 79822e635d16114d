"""A real node beside the test kubelet (issue 12): the kubelet built from the same `k8s.io/kubernetes`
module as the control plane (`build.sh kubelet`), Debian's containerd 1.6 and runc, CNI bridge +
host-local + portmap + loopback from Debian's containernetworking-plugins. Pods on it run in real
containers from real images: securityContext, read-only root filesystems, non-root uids, seccomp and
dropped capabilities are enforced, not only emitted.

    python -m tests.cluster up --real-node       # the environment plus node `proctor-real-node`
    python -m tests.cluster down                 # stops it and undoes its host changes

No image is pulled: the pause image is built from `pause.go` (`build.sh kubelet`) and imported, and
`localhost/proctor-*` images found in podman's storage (tests/setup.d/40-images.sh) are imported with
`podman save | ctr -n k8s.io images import`; pods use `imagePullPolicy: Never`.

The kubelet changes the host: it sets sysctls (kernel.panic, kernel.panic_on_oops, ...) and adds
iptables chains (KUBE-FIREWALL drops traffic to 127.0.0.0/8 from other sources), and the CNI bridge
adds a bridge device, NAT rules and forwarding. `start` snapshots the sysctls it may touch and the
iptables rules; `stop` deletes only the rules and chains that were added since (other users' rules
stay), restores the sysctls and removes the bridge.

This machine's quirks, all handled here: hybrid cgroup v1 (`failCgroupV1: false`, `cgroupDriver:
cgroupfs`), swap (`failSwapOn: false`), no CAP_SYS_RESOURCE (`restrict_oom_score_adj = true` in
containerd), and the node address must not be loopback (the CNI bridge routes pods to it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import binaries, procs
from .binaries import MissingBinary

NODE_NAME = "proctor-real-node"
BRIDGE = "proctor0"
CNI_NETWORK = "proctor-node"
POD_CIDR = "10.244.0.0/24"
PAUSE_IMAGE = "localhost/proctor-pause:1"
CNI_BIN = Path("/usr/lib/cni")
TAINT_KEY = "proctor.dev/real-node"
# What the kubelet (without protectKernelDefaults), the CNI bridge and kube-proxy may change.
SYSCTLS = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)
IPTABLES = ("iptables", "ip6tables")


def kubelet_dir() -> Path:
    return binaries.cache_dir() / f"kubelet-{binaries.K8S_VERSION}"


def missing_prerequisites() -> list[str]:
    """What is missing on this machine, each with how to get it."""
    missing = []
    if not (kubelet_dir() / ".complete").exists():
        missing.append(f"kubelet and pause (tests/cluster/build.sh kubelet -> {kubelet_dir()})")
    for tool, package in (("containerd", "containerd"), ("ctr", "containerd"), ("runc", "runc"),
                          ("podman", "podman"), ("iptables-save", "iptables"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {package})")
    for plugin in ("bridge", "host-local", "portmap", "loopback"):
        if not (CNI_BIN / plugin).exists():
            missing.append(f"CNI plugin {plugin} (apt-get install containernetworking-plugins)")
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def node_ip() -> str:
    """The host's address on its default route: the kubelet must not advertise a loopback address."""
    out = subprocess.run(["ip", "-4", "-o", "route", "get", "192.0.2.1"], capture_output=True, text=True)
    words = out.stdout.split()
    if "src" in words:
        return words[words.index("src") + 1]
    raise RuntimeError(f"no non-loopback IPv4 address for the real node: {out.stdout}{out.stderr}")


# ---- host state: snapshot and undo -------------------------------------------------------------


def _read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", *name.split(".")).read_text().strip()
    except OSError:
        return None


def _iptables_rules(tool: str) -> dict[str, dict[str, list[str]]]:
    """{table: {"chains": [...], "rules": [...]}} from `<tool>-save`."""
    done = subprocess.run([f"{tool}-save"], capture_output=True, text=True)
    tables: dict[str, dict[str, list[str]]] = {}
    table = None
    for line in done.stdout.splitlines():
        if line.startswith("*"):
            table = line[1:]
            tables[table] = {"chains": [], "rules": []}
        elif table and line.startswith(":"):
            tables[table]["chains"].append(line[1:].split()[0])
        elif table and line.startswith("-A "):
            tables[table]["rules"].append(line[3:])
    return tables


def snapshot_host(path: Path) -> None:
    """Record the sysctls and iptables rules the node may change (only once per `up`)."""
    if path.exists():
        return
    state = {
        "sysctls": {name: _read_sysctl(name) for name in SYSCTLS},
        "iptables": {tool: _iptables_rules(tool) for tool in IPTABLES if shutil.which(f"{tool}-save")},
    }
    path.write_text(json.dumps(state, indent=1))


def restore_host(path: Path) -> list[str]:
    """Undo what the node changed since `snapshot_host`; returns what could not be undone."""
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    problems = []
    for tool, before in state["iptables"].items():
        now = _iptables_rules(tool)
        for table, current in now.items():
            old = before.get(table, {"chains": [], "rules": []})
            for rule in reversed(current["rules"]):
                if rule not in old["rules"]:
                    done = subprocess.run(
                        [tool, "-t", table, "-D", *_split_rule(rule)], capture_output=True, text=True
                    )
                    if done.returncode:
                        problems.append(f"{tool} -t {table} -D {rule}: {done.stderr.strip()}")
            for chain in current["chains"]:
                if chain not in old["chains"]:
                    subprocess.run([tool, "-t", table, "-F", chain], capture_output=True)
            for chain in current["chains"]:
                if chain not in old["chains"]:
                    done = subprocess.run([tool, "-t", table, "-X", chain], capture_output=True, text=True)
                    if done.returncode:
                        problems.append(f"{tool} -t {table} -X {chain}: {done.stderr.strip()}")
    for name, value in state["sysctls"].items():
        if value is not None and _read_sysctl(name) != value:
            try:
                Path("/proc/sys", *name.split(".")).write_text(value)
            except OSError as err:
                problems.append(f"sysctl {name}={value}: {err}")
    path.unlink()
    return problems


def _split_rule(rule: str) -> list[str]:
    import shlex

    return shlex.split(rule)


# ---- configuration -----------------------------------------------------------------------------


def containerd_config(workdir: Path, root: Path) -> str:
    sock = workdir / "containerd.sock"
    return f"""version = 2
root = "{root}"
state = "{workdir}/containerd-state"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{PAUSE_IMAGE}"
    # No CAP_SYS_RESOURCE here: lowering oom_score_adj below the parent's fails.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{CNI_BIN}"
      conf_dir = "{workdir}/cni"
  [plugins."io.containerd.internal.v1.opt"]
    path = "{workdir}/containerd-opt"
"""


def cni_config() -> str:
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"},
            ],
        },
        indent=1,
    )


def kubelet_config(workdir: Path, port: int, healthz_port: int) -> str:
    sock = f"unix://{workdir}/containerd.sock"
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
address: 127.0.0.1
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz_port}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
authorization: {{mode: AlwaysAllow}}
containerRuntimeEndpoint: {sock}
imageServiceEndpoint: {sock}
podLogsDir: {workdir}/pod-logs
serializeImagePulls: false
evictionHard: {{memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
maxPods: 30
podPidsLimit: 4096
# Only pods that ask for the real node run there (toleration + nodeSelector, or spec.nodeName).
registerWithTaints:
- {{key: {TAINT_KEY}, value: "true", effect: NoSchedule}}
"""


# ---- start and stop ----------------------------------------------------------------------------


def ctr(workdir: Path, *args: str, input: bytes | None = None, timeout: float = 600):
    return subprocess.run(
        ["ctr", "--address", str(workdir / "containerd.sock"), "-n", "k8s.io", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
    )


def import_image(workdir: Path, image: str) -> None:
    """`podman save | ctr import`, skipped when containerd already holds the same image id."""
    image_id = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True
    ).stdout.strip()
    # Next to containerd's image store (in the cache), so a new session does not import again.
    stamp = binaries.cache_dir() / "realnode" / "imported" / image.replace("/", "_").replace(":", "_")
    listed = ctr(workdir, "images", "ls", "-q").stdout.decode().split()
    if image in listed and stamp.exists() and stamp.read_text() == image_id:
        return
    save = subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE)
    done = subprocess.run(
        ["ctr", "--address", str(workdir / "containerd.sock"), "-n", "k8s.io", "images", "import", "-"],
        stdin=save.stdout,
        capture_output=True,
        timeout=900,
    )
    save.wait()
    if done.returncode or save.returncode:
        raise RuntimeError(f"importing {image} into containerd: {done.stderr.decode()[-2000:]}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(image_id)


def pause_image() -> None:
    """localhost/proctor-pause:1 in podman's storage: FROM scratch + the static pause binary."""
    if subprocess.run(["podman", "image", "exists", PAUSE_IMAGE]).returncode == 0:
        return
    context = kubelet_dir()
    (context / "Containerfile.pause").write_text(
        'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n'
    )
    subprocess.run(
        ["podman", "build", "-q", "--network=none", "-f", str(context / "Containerfile.pause"),
         "-t", PAUSE_IMAGE, str(context)],
        check=True, capture_output=True,
    )  # fmt: skip


def start(workdir: Path, kubeconfig: Path, kubectl, die_with_parent: bool = True, timeout: float = 120):
    """Start containerd and the kubelet; returns their `procs.Server`s once the node is Ready."""
    missing = missing_prerequisites()
    if missing:
        raise MissingBinary("the real node needs: " + "; ".join(missing))
    workdir.mkdir(parents=True, exist_ok=True)
    snapshot_host(workdir / "host-before.json")
    # Images persist across `up`s: containerd's root lives in the cache, not in the state dir.
    root = binaries.cache_dir() / "realnode" / "containerd"
    root.mkdir(parents=True, exist_ok=True)
    (workdir / "cni").mkdir(exist_ok=True)
    (workdir / "cni" / "10-proctor.conflist").write_text(cni_config())
    (workdir / "containerd.toml").write_text(containerd_config(workdir, root))
    servers = []
    try:
        containerd = procs.Server(
            "containerd", ["containerd", "--config", str(workdir / "containerd.toml")],
            workdir / "containerd.log", cwd=workdir, die_with_parent=die_with_parent,
        )  # fmt: skip
        servers.append(containerd)
        procs.wait_until(
            "containerd", lambda: ctr(workdir, "version", timeout=5).returncode == 0, 30, [containerd]
        )
        pause_image()
        import_image(workdir, PAUSE_IMAGE)
        for image in _proctor_images():
            import_image(workdir, image)
        port, healthz = procs.free_port(), procs.free_port()
        (workdir / "kubelet.yaml").write_text(kubelet_config(workdir, port, healthz))
        kubelet = procs.Server(
            "real-kubelet",
            [str(kubelet_dir() / "kubelet"), f"--config={workdir / 'kubelet.yaml'}",
             f"--kubeconfig={kubeconfig}", f"--root-dir={workdir / 'kubelet'}",
             f"--cert-dir={workdir / 'kubelet-pki'}", f"--hostname-override={NODE_NAME}",
             f"--node-ip={node_ip()}", "--v=1"],
            workdir / "kubelet.log", cwd=workdir, die_with_parent=die_with_parent,
        )  # fmt: skip
        servers.append(kubelet)

        def ready() -> bool:
            done = kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
            if done.returncode:
                return False
            conditions = json.loads(done.stdout)["status"].get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        procs.wait_until(f"node {NODE_NAME}", ready, timeout, servers, interval=0.5)
    except BaseException:
        for server in reversed(servers):
            server.stop()
        stop_leftovers(workdir, kubectl=None)
        raise
    return servers


def _proctor_images() -> list[str]:
    done = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}",
         "--filter", "reference=localhost/proctor-*"],
        capture_output=True, text=True,
    )  # fmt: skip
    wanted = []
    for name in done.stdout.split():
        repo, _, tag = name.rpartition(":")
        # The project-version tags only (not every content tag), and never the base or the pause image.
        if repo in ("localhost/proctor-operator", "localhost/proctor-worker") and "-" not in tag:
            wanted.append(name)
    return wanted


def stop_leftovers(workdir: Path, kubectl=None) -> list[str]:
    """After the kubelet and containerd stopped (or before, to drain): pods, shims, mounts, bridge,
    host changes. Returns what could not be undone."""
    problems: list[str] = []
    sock = workdir / "containerd.sock"
    if sock.exists():
        # Containers outlive containerd (their shims are their own process groups): kill them first.
        tasks = ctr(workdir, "tasks", "ls", "-q", timeout=30).stdout.decode().split()
        for task in tasks:
            ctr(workdir, "tasks", "kill", "-s", "SIGKILL", task, timeout=30)
        for task in tasks:
            ctr(workdir, "tasks", "delete", "-f", task, timeout=30)
    marker = str(workdir)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "containerd-shim" in cmdline and marker in cmdline:
            procs.kill_group(int(pid_dir.name), timeout=2, sig=signal.SIGKILL)
    # Volume and sandbox mounts under the state directory (deepest first).
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(marker + "/")
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    # The kubelet links container logs into /var/log/containers whatever podLogsDir says.
    for link in Path("/var/log/containers").glob("*.log"):
        if link.is_symlink() and os.readlink(link).startswith(marker + "/"):
            link.unlink()
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
    shutil.rmtree(Path("/var/lib/cni/networks") / CNI_NETWORK, ignore_errors=True)
    problems += restore_host(workdir / "host-before.json")
    if kubectl is not None:
        kubectl("delete", "node", NODE_NAME, "--ignore-not-found", "--wait=false", check=False)
    return problems


def drain(kubectl, timeout: float = 60) -> None:
    """Delete every pod on the real node and wait until the kubelet tore their sandboxes down (so CNI
    releases addresses and rules) before the kubelet is stopped."""
    selector = f"spec.nodeName={NODE_NAME}"
    kubectl(
        "delete", "pods", "-A", "--field-selector", selector, "--grace-period=1", "--wait=false", check=False
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = kubectl("get", "pods", "-A", "--field-selector", selector, "-o", "name", check=False)
        if done.returncode == 0 and not done.stdout.strip():
            return
        time.sleep(1)


def install_seccomp_profile(workdir: Path, profile: Path, name: str = "proctor/sandbox.json") -> str:
    """Put a seccomp profile where this node's kubelet finds `localhostProfile: <name>` (its root dir's
    `seccomp/`, as a node's admin would under /var/lib/kubelet/seccomp/); returns `name`."""
    target = workdir / "kubelet" / "seccomp" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(profile, target)
    return name


# ---- reaching the host's servers from pods -----------------------------------------------------

GATEWAY = "10.244.0.1"  # the bridge's own address: the pods' default gateway (first address of POD_CIDR)
KUBERNETES_SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service's ClusterIP (controlplane.SERVICE_CIDR)


def ensure_bridge() -> None:
    """The CNI bridge with the gateway address, before any pod asked for it: servers for pods bind to it.

    The bridge plugin reuses an existing bridge of its name and keeps an address equal to its gateway's;
    `stop_leftovers` deletes it like the one the plugin makes."""
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0:
        subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True, capture_output=True)
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE], capture_output=True, text=True)
    prefix = POD_CIDR.split("/")[1]
    if f"{GATEWAY}/{prefix}" not in shown.stdout:
        add = ["ip", "addr", "add", f"{GATEWAY}/{prefix}", "dev", BRIDGE]
        subprocess.run(add, check=True, capture_output=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True, capture_output=True)


class Forwarder:
    """A TCP relay from `GATEWAY:<port>` (reachable from pods on the real node) to a server that listens
    on 127.0.0.1 (the API server, MinIO, the judge double: the bridge cannot reach loopback). Threads in
    the test process; `close()` ends the listener and every open connection."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", host: str = GATEWAY) -> None:
        import socket
        import threading

        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(128)
        self.host, self.port = self.listener.getsockname()
        self._open: set = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"forward-{self.port}", daemon=True).start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _accept(self) -> None:
        import socket
        import threading

        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._open.update((conn, upstream))
            pair = [conn, upstream, 2]  # both sockets and how many directions still run
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src, dst, pair: list) -> None:
        import socket

        failed = False
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # pass the half-close on; the other direction goes on
        except OSError:
            failed = True
        with self._lock:
            pair[2] -= 1
            if pair[2] and failed:
                for sock in pair[:2]:  # a reset on one side ends the other direction's recv too
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            if not pair[2]:
                for sock in pair[:2]:
                    sock.close()
                    self._open.discard(sock)

    def close(self) -> None:
        import socket

        self._closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        try:
            self.listener.close()
        except OSError:
            pass
        with self._lock:
            for sock in self._open:
                try:
                    sock.close()
                except OSError:
                    pass
            self._open.clear()


class PodNetwork:
    """What pods on the real node need from the host, made and undone by the `real_node_network` fixture:

    - `expose(url)`: a `Forwarder` on the bridge address for a server on 127.0.0.1; returns the URL
      pods use (same scheme and path, host and port replaced);
    - the `kubernetes` Service: pods' in-cluster clients dial `KUBERNETES_SERVICE_HOST` =
      `10.0.0.1:443` (the ClusterIP the kubelet puts in every pod's environment, covered by the API
      server's certificate). There is no kube-proxy; one DNAT rule does its job for this one Service,
      to a forwarder to the API server. So an operator pod logs in exactly as in a cluster: its
      ServiceAccount token and the `kube-root-ca.crt` CA from the projected volume, no kubeconfig.
    """

    def __init__(self, api_port: int) -> None:
        ensure_bridge()
        self.forwarders: list[Forwarder] = []
        api = self._forward(api_port)
        self.dnat = [
            "PREROUTING", "-s", POD_CIDR, "-d", f"{KUBERNETES_SERVICE_IP}/32", "-p", "tcp", "--dport", "443",
            "-m", "comment", "--comment", "proctor real node: the kubernetes Service",
            "-j", "DNAT", "--to-destination", api.address,
        ]  # fmt: skip
        subprocess.run(["iptables", "-t", "nat", "-I", *self.dnat], check=True, capture_output=True)

    def _forward(self, port: int) -> Forwarder:
        forwarder = Forwarder(port)
        self.forwarders.append(forwarder)
        return forwarder

    def expose(self, url: str) -> str:
        """The URL under which pods reach `url` (a server on 127.0.0.1)."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            raise ValueError(f"only servers on 127.0.0.1 with a port are forwarded, not {url}")
        forwarder = self._forward(parts.port)
        return urlunsplit(parts._replace(netloc=forwarder.address))

    def close(self) -> None:
        subprocess.run(["iptables", "-t", "nat", "-D", *self.dnat], capture_output=True)
        for forwarder in self.forwarders:
            forwarder.close()
        self.forwarders.clear()
