"""End-to-end fixtures: the Proctor operator as a process against the real test control plane.

Worker pods are run by the test kubelet (a test double for the container runtime) as local
processes; their store is the session's MinIO bucket (with object versioning on, so a test can prove
an item record was written exactly once); the judge, when a test needs one, is the OpenAI-compatible
test double.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.waiting import poll

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    return poll(what, check, timeout, every)


class Kube:
    """kubectl in one namespace, returning parsed JSON."""

    def __init__(self, k8s, namespace: str) -> None:
        self.k8s, self.namespace = k8s, namespace

    def __call__(self, *args: str, input: str | None = None, check: bool = True):
        return self.k8s.kubectl("-n", self.namespace, *args, input=input, check=check)

    def get(self, kind: str, name: str | None = None) -> Any:
        out = self("get", kind, *([name] if name else []), "-o", "json", check=False)
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)

    def items(self, kind: str, selector: str | None = None) -> list[dict]:
        args = ["get", kind, "-o", "json"] + (["-l", selector] if selector else [])
        return json.loads(self(*args).stdout)["items"]

    def apply(self, manifest: str | dict | list) -> subprocess.CompletedProcess:
        if isinstance(manifest, dict):
            manifest = yaml.safe_dump(manifest)
        elif isinstance(manifest, list):
            manifest = yaml.safe_dump_all(manifest)
        return self("apply", "-f", "-", input=manifest)

    def phase(self, kind: str, name: str) -> str | None:
        obj = self.get(kind, name)
        return ((obj or {}).get("status") or {}).get("phase")

    def wait_phase(self, kind: str, name: str, phases: tuple[str, ...], timeout: float = 180) -> dict:
        def check():
            obj = self.get(kind, name)
            return obj if ((obj or {}).get("status") or {}).get("phase") in phases else None

        return wait_for(check, timeout, f"{kind}/{name} to reach {phases} (now {self.phase(kind, name)})")


class OperatorProcess:
    """`proctor operator` as a child process; kill it, start it again, read its log and metrics."""

    def __init__(
        self, k8s, s3, namespace: str, log_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.k8s, self.namespace, self.log_path = k8s, namespace, log_dir / f"operator-{namespace}.log"
        self.metrics_port, self.liveness_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
            "KUBECONFIG": k8s.kubeconfig,
            "PROCTOR_STORE": f"s3://{s3.bucket}/e2e-{namespace}",
            "PROCTOR_S3_ADDRESSING": "path",
            "PROCTOR_STORE_CREDENTIALS_SECRET": "proctor-store",
            "PROCTOR_WORKER_COMMAND": json.dumps([PYTHON, "-m", "proctor_jobs.worker"]),
            "PROCTOR_INGEST_COMMAND": json.dumps([PYTHON, "-m", "proctor", "ingest"]),
            "PROCTOR_AGGREGATE_COMMAND": json.dumps([PYTHON, "-m", "proctor", "aggregate"]),
            "PROCTOR_CALIBRATE_COMMAND": json.dumps([PYTHON, "-m", "proctor", "judge", "check"]),
            "PROCTOR_RESYNC_SECONDS": "1",
            "PROCTOR_JUDGE_RESYNC_SECONDS": "1",
            "PROCTOR_JUDGE_RECHECK_SECONDS": "2",
            **s3.env(),
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen | None = None
        #: how replicas coordinate: alone, or ["--leader-election-namespace", ns] for several
        self.election = ["--standalone"]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> OperatorProcess:
        log = open(self.log_path, "a")  # noqa: SIM115 - the operator writes to it for its whole life
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "proctor",
                "operator",
                "--namespace",
                self.namespace,
                *self.election,
                "--bind",
                "127.0.0.1",
                "--metrics-port",
                str(self.metrics_port),
                "--liveness-port",
                str(self.liveness_port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._healthy, 60, "the operator's liveness endpoint")
        return self

    def _healthy(self) -> bool:
        import urllib.request

        if self.proc.poll() is not None:
            raise AssertionError(f"the operator exited: {self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return r.read().decode()


@pytest.fixture(scope="session")
def crds(k8s) -> None:
    k8s.kubectl("apply", "-f", str(REPO / "crds"))

    def established(name: str) -> bool:
        out = k8s.kubectl("get", "crd", f"{name}.proctor.dev", "-o", "json", check=False)
        conditions = (json.loads(out.stdout or "{}").get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    for name in ("evalruns", "judgeservers", "artifacts"):
        wait_for(lambda n=name: established(n), 60, f"CRD {name} to be established")


@pytest.fixture(scope="session")
def versioned_bucket(s3) -> str:
    """Object versioning on the session bucket: every PUT of a key leaves a version we can count."""
    s3.client().put_bucket_versioning(Bucket=s3.bucket, VersioningConfiguration={"Status": "Enabled"})
    return s3.bucket


def create_store_secret(k8s, namespace: str, s3, name: str = "proctor-store") -> None:
    """A store credentials Secret in `namespace` holding the test S3 server's keys."""
    k8s.kubectl(
        "-n",
        namespace,
        "create",
        "secret",
        "generic",
        name,
        f"--from-literal=AWS_ACCESS_KEY_ID={s3.access_key}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={s3.secret_key}",
    )


@pytest.fixture
def namespace(k8s, s3, crds, versioned_bucket) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    k8s.create_namespace(name)
    create_store_secret(k8s, name, s3)
    yield name
    k8s.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kube(k8s, namespace) -> Kube:
    return Kube(k8s, namespace)


@pytest.fixture
def operator(k8s, s3, namespace, tmp_path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(k8s, s3, namespace, tmp_path).start()
    yield op
    op.stop()
    if os.environ.get("PROCTOR_E2E_SHOW_OPERATOR_LOG"):
        print(op.log()[-5000:])


def record_versions(s3, bucket: str, prefix: str) -> dict[str, int]:
    """Item record key -> how many times it was written."""
    counts: dict[str, int] = {}
    paginator = s3.client().get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if "/items/" in version["Key"]:
                counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts
