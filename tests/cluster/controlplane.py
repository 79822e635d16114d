"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, controller-manager, scheduler.

The operator under test must meet real admission, RBAC, schema validation, the Job controller and the
scheduler, so the tests run against the genuine binaries (built by build.sh) rather than a mock. The
setup is the smallest that behaves like a cluster:

* TLS with a CA generated per environment; the API server's certificate covers 127.0.0.1.
* Static-token authentication (`--token-auth-file`) for an admin (system:masters) and for an operator
  identity named like a ServiceAccount, `system:serviceaccount:proctor-system:proctor-operator`, bound to
  nothing: tests grant it exactly the RBAC the chart would, and RoleBindings whose subject is that
  ServiceAccount apply to it.
* RBAC authorisation; service-account tokens signed with a generated key, so TokenRequest works and
  pods run by the test kubelet authenticate as their ServiceAccount.
* The controller-manager runs every controller except node lifecycle (the test kubelet's node must
  never be tainted or have its pods evicted), i.e. garbage collector, Job, ServiceAccount, namespace,
  Deployment/ReplicaSet, root-CA publisher ... all on.
* Every port is chosen at start, everything binds 127.0.0.1, and each process is in its own process
  group and dies with its owner (see procs.py).
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import binaries, pki
from .procs import Server, free_port, wait_until

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from .kubelet import KubeletHandle

OPERATOR_NAMESPACE = "proctor-system"
OPERATOR_SERVICE_ACCOUNT = "proctor-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
ADMIN_USER = "proctor-admin"
SERVICE_CIDR = "10.0.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call whose message carries kubectl's stderr (CalledProcessError's does not)."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


@dataclass
class ControlPlaneInfo:
    """What a client needs to reach the control plane; saved as JSON for the developer command."""

    server: str
    ca_file: str
    kubeconfig: str
    operator_kubeconfig: str
    admin_token: str
    operator_token: str
    workdir: str
    pids: dict[str, int] = field(default_factory=dict)


def write_kubeconfig(path: Path, server: str, ca_file: Path, user: str, token: str) -> None:
    """A kubeconfig with one cluster, one token user and a current context."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "proctor-test", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "proctor-test", "context": {"cluster": "proctor-test", "user": user}}],
        "current-context": "proctor-test",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


class ControlPlane:
    """A running control plane (or a description of one started by another process)."""

    def __init__(self, info: ControlPlaneInfo, servers: Sequence[Server] = ()) -> None:
        self.info = info
        self.server = info.server
        self.ca_file = Path(info.ca_file)
        self.kubeconfig = Path(info.kubeconfig)
        self.operator_kubeconfig = Path(info.operator_kubeconfig)
        self.admin_token = info.admin_token
        self.operator_token = info.operator_token
        self.operator_user = OPERATOR_USER
        self.operator_namespace = OPERATOR_NAMESPACE
        self.operator_service_account = OPERATOR_SERVICE_ACCOUNT
        self.workdir = Path(info.workdir)
        self.servers = list(servers)
        self.kubelet: KubeletHandle | None = None
        self._ssl = ssl.create_default_context(cafile=str(self.ca_file))

    # ---- clients ---------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Variables a subprocess needs to act as the admin (kubectl, helm, the operator run locally)."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    @property
    def kubectl_path(self) -> Path:
        """The kubectl binary built with this control plane (same version)."""
        return binaries.kubectl()

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the matching kubectl as the admin; raises KubectlError (with stderr) when check fails."""
        argv = [str(binaries.kubectl()), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def helm(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the built helm as the admin, with its config/cache/data kept in the environment's dir."""
        argv = [str(binaries.go_binary("helm")), *args]
        home = self.workdir / "helm"
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def api_client(self, kubeconfig: Path | None = None) -> ApiClient:
        """A kubernetes.client.ApiClient for the admin (or for `kubeconfig`, e.g. the operator's)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(kubeconfig or self.kubeconfig))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """A raw API call (no kubernetes package needed); returns (status, decoded JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.admin_token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ready(self) -> bool:
        """Whether /readyz answers 200 (all post-start hooks, incl. RBAC bootstrap, are done)."""
        status, _ = self.request("GET", "/readyz")
        return status == 200

    def create_namespace(self, name: str, timeout: float = 30) -> None:
        """Create a namespace and wait for its `default` ServiceAccount.

        The ServiceAccount admission plugin refuses pods in a namespace whose ServiceAccount the
        controller has not created yet; waiting here spares every test that race.
        """
        status, body = self.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if status not in (201, 409):
            raise RuntimeError(f"creating namespace {name}: {status} {body}")
        wait_until(
            f"ServiceAccount {name}/default",
            lambda: self.request("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")[0] == 200,
            timeout,
        )

    # ---- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process of the control plane, the last started first."""
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def pids(self) -> dict[str, int]:
        """Process ids (= process-group ids) of the running servers."""
        return {s.name: s.pid for s in self.servers}


def start_etcd(workdir: Path, die_with_parent: bool = True) -> tuple[Server, int]:
    """etcd with fsync off (a test cluster's data is disposable, and fsync dominates its latency)."""
    client, peer = free_port(), free_port()
    data = workdir / "etcd-data"
    server = Server(
        "etcd",
        [
            str(binaries.go_binary("etcd")),
            "--name=default",
            f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
            "--quota-backend-bytes=4294967296",
        ],
        workdir / "etcd.log",
        die_with_parent=die_with_parent,
    )
    return server, client


def start(workdir: Path, die_with_parent: bool = True, timeout: float = 60) -> ControlPlane:
    """Generate credentials, start all four processes and return once the API server is ready.

    The controller-manager and scheduler are started as soon as the API server answers /readyz;
    they are not waited for here (callers that need them wait for what they do, e.g. a Node or the
    `default` ServiceAccount), which keeps the start quick.
    """
    apiserver_bin = binaries.go_binary("k8s", "kube-apiserver")
    kcm_bin = binaries.go_binary("k8s", "kube-controller-manager")
    scheduler_bin = binaries.go_binary("k8s", "kube-scheduler")
    binaries.go_binary("etcd")

    workdir.mkdir(parents=True, exist_ok=True)
    certs = pki.generate(workdir / "pki")
    tokens = {
        "admin": secrets.token_hex(24),
        "operator": secrets.token_hex(24),
        "kcm": secrets.token_hex(24),
        "scheduler": secrets.token_hex(24),
    }
    token_file = workdir / "tokens.csv"
    token_file.write_text(
        f'{tokens["admin"]},{ADMIN_USER},uid-admin,"system:masters"\n'
        f"{tokens['operator']},{OPERATOR_USER},uid-operator,"
        f'"system:serviceaccounts,system:serviceaccounts:{OPERATOR_NAMESPACE}"\n'
        f'{tokens["kcm"]},system:kube-controller-manager,uid-kcm,"system:masters"\n'
        f'{tokens["scheduler"]},system:kube-scheduler,uid-scheduler,"system:masters"\n'
    )
    token_file.chmod(0o600)

    # PROCTOR_APISERVER_AUDIT=1 logs every request's metadata (benchmarks count the operator's).
    audit_args: list[str] = []
    if os.environ.get("PROCTOR_APISERVER_AUDIT") == "1":
        policy = workdir / "audit-policy.yaml"
        policy.write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
            + (
                "rules:\n- level: Request\n  verbs: [patch]\n- level: Metadata\n"
                if os.environ.get("PROCTOR_APISERVER_AUDIT_PATCHES") == "1"
                else "rules:\n- level: Metadata\n"
            )
        )
        audit_args = [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={workdir / 'audit.log'}",
            "--audit-log-maxsize=0",
        ]
    servers: list[Server] = []
    try:
        etcd, etcd_port = start_etcd(workdir, die_with_parent)
        servers.append(etcd)
        api_port = free_port()
        server_url = f"https://127.0.0.1:{api_port}"
        apiserver = Server(
            "kube-apiserver",
            [
                str(apiserver_bin),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={certs.serving_cert}",
                f"--tls-private-key-file={certs.serving_key}",
                f"--client-ca-file={certs.ca_cert}",
                f"--token-auth-file={token_file}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={ISSUER}",
                f"--api-audiences={ISSUER}",
                f"--service-account-key-file={certs.sa_pub}",
                f"--service-account-signing-key-file={certs.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                # pods/log (`kubectl logs`) reaches the test kubelet's log endpoint on its InternalIP
                # (its Hostname does not resolve); kubelets' certificates are not verified (the default).
                "--kubelet-preferred-address-types=InternalIP",
                # The in-cluster `kubernetes` Service cannot point at a loopback address; pods get
                # KUBERNETES_SERVICE_HOST=127.0.0.1 from the test kubelet instead.
                "--endpoint-reconciler-type=none",
                # Without the node-lifecycle controller nothing would lift the not-ready taint this
                # plugin puts on new Nodes.
                "--disable-admission-plugins=TaintNodesByCondition",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                f"--cert-dir={workdir / 'apiserver-certs'}",
                "--v=1",
                *audit_args,
            ],
            workdir / "kube-apiserver.log",
            die_with_parent=die_with_parent,
        )
        servers.append(apiserver)

        kubeconfig = workdir / "admin.kubeconfig"
        operator_kubeconfig = workdir / "operator.kubeconfig"
        write_kubeconfig(kubeconfig, server_url, certs.ca_cert, ADMIN_USER, tokens["admin"])
        write_kubeconfig(operator_kubeconfig, server_url, certs.ca_cert, OPERATOR_USER, tokens["operator"])
        kcm_kubeconfig = workdir / "kcm.kubeconfig"
        scheduler_kubeconfig = workdir / "scheduler.kubeconfig"
        write_kubeconfig(
            kcm_kubeconfig, server_url, certs.ca_cert, "system:kube-controller-manager", tokens["kcm"]
        )
        write_kubeconfig(
            scheduler_kubeconfig, server_url, certs.ca_cert, "system:kube-scheduler", tokens["scheduler"]
        )

        info = ControlPlaneInfo(
            server=server_url,
            ca_file=str(certs.ca_cert),
            kubeconfig=str(kubeconfig),
            operator_kubeconfig=str(operator_kubeconfig),
            admin_token=tokens["admin"],
            operator_token=tokens["operator"],
            workdir=str(workdir),
        )
        plane = ControlPlane(info, servers)
        servers = plane.servers  # one list: the plane must know every process started below
        wait_until("kube-apiserver /readyz", plane.ready, timeout, servers)

        servers.append(
            Server(
                "kube-controller-manager",
                [
                    str(kcm_bin),
                    f"--kubeconfig={kcm_kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    f"--cert-dir={workdir / 'kcm-certs'}",
                    "--leader-elect=false",
                    "--controllers=*,-node-lifecycle-controller",
                    f"--service-account-private-key-file={certs.sa_key}",
                    f"--root-ca-file={certs.ca_cert}",
                    f"--cluster-signing-cert-file={certs.ca_cert}",
                    f"--cluster-signing-key-file={certs.ca_key}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--use-service-account-credentials=false",
                    "--profiling=false",
                    "--v=1",
                ],
                workdir / "kube-controller-manager.log",
                die_with_parent=die_with_parent,
            )
        )
        servers.append(
            Server(
                "kube-scheduler",
                [
                    str(scheduler_bin),
                    f"--kubeconfig={scheduler_kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--leader-elect=false",
                    "--profiling=false",
                    "--v=1",
                ],
                workdir / "kube-scheduler.log",
                die_with_parent=die_with_parent,
            )
        )
        info.pids = {s.name: s.pid for s in servers}
        (workdir / "controlplane.json").write_text(json.dumps(asdict(info), indent=2))
        return plane
    except BaseException:
        for server in reversed(servers):
            server.stop()
        raise


def load(workdir: Path) -> ControlPlane:
    """Describe a control plane another process started (the developer command's `env`/`down`)."""
    state = json.loads((workdir / "controlplane.json").read_text())
    info = ControlPlaneInfo(**{k: v for k, v in state.items() if k in ControlPlaneInfo.__dataclass_fields__})
    return ControlPlane(info)


def wait_for_controllers(plane: ControlPlane, namespace: str = "default", timeout: float = 30) -> None:
    """Wait until the controller-manager has created `namespace`'s default ServiceAccount.

    That is the first thing pods need from the controller-manager, and it proves it is running.
    """
    wait_until(
        "kube-controller-manager (ServiceAccount default/default)",
        lambda: plane.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")[0] == 200,
        timeout,
        plane.servers,
    )


def env_exports(values: Mapping[str, str]) -> str:
    """Shell `export` lines for the developer command."""
    import shlex

    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in values.items())
