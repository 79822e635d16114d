"""One `helm install` of the chart, shared by tests/e2e/test_helm_install.py and test_dashboards.py.

A pytest plugin (both modules list it in `pytest_plugins`), so the session-scoped fixtures below exist
once per session: the chart is installed once, the runs are done once, and both files read them.

- `helm_release`: the chart installed into the real test control plane with values that point the
  store at the session's MinIO and the worker/ingest commands at this venv's Python. The operator pod
  is started by the test kubelet: `proctor operator` really runs, as the chart's ServiceAccount,
  limited by the chart's RBAC (its kubeconfig holds that ServiceAccount's token).
- `helm_runs`: what runs on it, scraped by the test Prometheus from the start: the HumanEval-V example
  (`kubectl apply -f examples/humanevalv/`), a small ArtifactsBench run judged by the judge test
  double through an external JudgeServer (so judge series exist), and a run whose credentials Secret
  does not exist (the run reports StoreUnavailable and the operator counts a reconcile error).
"""

from __future__ import annotations

import json
import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Kube, wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "proctor"
PYTHON = sys.executable
RELEASE = "proctor"
STORE_SECRET = "proctor-helm-store"
JUDGED_RUN = "helm-judged"
BROKEN_RUN = "helm-missing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Release:
    k8s: Any
    name: str
    namespace: str  # the release's namespace (the operator runs there)
    watch: str  # the namespace the operator watches (runs go there)
    values: dict[str, Any]
    install_output: str
    metrics_port: int
    store_prefix: str
    uninstalled: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def kube(self) -> Kube:
        return Kube(self.k8s, self.watch)

    @property
    def system(self) -> Kube:
        return Kube(self.k8s, self.namespace)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def operator_pods(self) -> list[dict]:
        return self.system.items("pods", f"app.kubernetes.io/instance={self.name}")

    def operator_log(self) -> str:
        pods = self.operator_pods()
        return self.k8s.kubelet.pod_log(self.namespace, pods[0]["metadata"]["name"]) if pods else ""

    def worker_logs(self, run: str, tail: int = 1500) -> str:
        """The last lines of each of a run's worker pods' logs: why a shard failed."""
        logs = []
        for pod in self.kube.items("pods", f"proctor.dev/run={run}"):
            name = pod["metadata"]["name"]
            logs.append(f"--- {name}\n{self.k8s.kubelet.pod_log(self.watch, name)[-tail:]}")
        return "\n".join(logs)

    def uninstall(self) -> str:
        out = self.k8s.helm("uninstall", self.name, "-n", self.namespace, "--wait", "--timeout", "120s")
        self.uninstalled = True
        return out.stdout


@pytest.fixture(scope="session")
def helm_release(k8s, s3) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    namespace, watch = f"proctor-helm-{suffix}", f"helm-runs-{suffix}"
    for ns in (namespace, watch):
        k8s.create_namespace(ns)
    metrics_port, liveness_port = free_port(), free_port()
    store_prefix = f"helm-{suffix}"
    values = {
        "watchNamespaces": [watch],
        "operator": {
            # Pods share the host's network under the test kubelet: loopback only, ports of our own.
            "bindAddress": "127.0.0.1",
            "resyncSeconds": 1,
            "judgeResyncSeconds": 1,
            "judgeRecheckSeconds": 2,
            "statusIntervalSeconds": 1,
        },
        "metrics": {"port": metrics_port},
        "liveness": {"port": liveness_port},
        "store": {
            "url": f"s3://{s3.bucket}/{store_prefix}",
            "endpoint": s3.endpoint,
            "region": s3.region,
            "addressing": "path",
            "credentialsSecret": STORE_SECRET,
            "credentials": {
                "create": True,
                "copyToWatchedNamespaces": True,  # one team: the runs' namespace gets the same keys
                "accessKeyId": s3.access_key,
                "secretAccessKey": s3.secret_key,
            },
        },
        # The test kubelet ignores images and runs commands on the host: this venv's Python.
        "worker": {
            "command": [PYTHON, "-m", "proctor_jobs.worker"],
            "ingestCommand": [PYTHON, "-m", "proctor", "ingest"],
            "aggregateCommand": [PYTHON, "-m", "proctor", "aggregate"],
            "calibrateCommand": [PYTHON, "-m", "proctor", "judge", "check"],
        },
    }
    values_file = Path(k8s.workdir) / f"helm-values-{suffix}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    out = k8s.helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        namespace,
        "-f",
        str(values_file),
        "--wait",
        "--timeout",
        "180s",
        timeout=240,
    )
    release = Release(k8s, RELEASE, namespace, watch, values, out.stdout, metrics_port, store_prefix)
    yield release
    if not release.uninstalled:
        k8s.helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "120s", check=False)
    for ns in (namespace, watch):
        k8s.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def judged_run() -> dict[str, Any]:
    """Three real ArtifactsBench tasks with prose answers: nothing to render, so judged on text alone
    (no browser needed). The judge double scores the first two from their `[[score:NN]]` markers and
    answers the third with text that has no score, every time: a judge error (`unparseable`) the run
    records as a failed item."""
    lines = (REPO / "examples" / "artifactsbench" / "data" / "tasks.jsonl").read_text().splitlines()
    tasks = [json.loads(line) for line in lines[:3]]
    answers = [
        {"index": tasks[0]["index"], "answer": "I would draw it with paths and gradients. [[score:70]]"},
        {"index": tasks[1]["index"], "answer": "A configuration file, described in words. [[score:40]]"},
        {"index": tasks[2]["index"], "answer": "Something the judge cannot score. [[reply:garbage]]"},
    ]
    return {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "metadata": {"name": JUDGED_RUN},
        "spec": {
            "benchmark": {"format": "artifactsbench", "source": {"inline": tasks}},
            "answers": {"format": "artifactsbench", "source": {"inline": answers}},
            "judge": {"serverRef": {"name": "helm-judge"}, "backoffSeconds": 0.1},
            "sharding": {"shardSize": 3},
            "parallelism": 1,
        },
    }


@dataclass
class Runs:
    release: Release
    judge: Any
    scrape_job: str


@pytest.fixture(scope="session")
def helm_runs(helm_release: Release, prometheus) -> Iterator[Runs]:
    from tests.doubles.judge_server import JudgeDoubleProcess

    job = f"proctor-helm-{helm_release.watch}"
    prometheus.add_target(job, f"127.0.0.1:{helm_release.metrics_port}", scrape_interval="1s")
    judge = JudgeDoubleProcess(0).start()
    try:
        kube = helm_release.kube
        kube.apply(
            {
                "apiVersion": "proctor.dev/v1alpha1",
                "kind": "JudgeServer",
                "metadata": {"name": "helm-judge"},
                "spec": {"external": {"baseUrl": judge.url, "model": "judge-double"}},
            }
        )
        kube("apply", "-f", str(REPO / "examples" / "humanevalv"))
        kube.apply(judged_run())
        broken = yaml.safe_load((REPO / "examples" / "humanevalv" / "evalrun-n1.yaml").read_text())
        broken["metadata"]["name"] = BROKEN_RUN
        broken["spec"]["storage"] = {"credentialsSecretRef": {"name": "no-such-secret"}}
        kube.apply(broken)
        for name in ("humanevalv-example", "humanevalv-example-n1", JUDGED_RUN):
            run = kube.wait_phase("evalrun", name, ("Succeeded", "Failed"), timeout=300)
            # The conditions first: pytest truncates long messages, and they say why a run failed.
            assert run["status"]["phase"] == "Succeeded", (
                f"{name}: {run['status'].get('conditions')}\n"
                f"{ {k: v for k, v in run['status'].items() if k != 'conditions'} }\n"
                f"{helm_release.worker_logs(name)}\n--- operator\n{helm_release.operator_log()[-3000:]}"
            )
        # Let Prometheus see every run's finished state (scores, all items done) before anyone queries.
        for name in ("humanevalv-example", "humanevalv-example-n1", JUDGED_RUN):
            wait_for(
                lambda n=name: (
                    prometheus.query(f'proctor_run_score{{namespace="{helm_release.watch}",run="{n}"}}')
                    and not prometheus.query(
                        f'proctor_run_items{{namespace="{helm_release.watch}",run="{n}",state="pending"}} > 0'
                    )
                ),
                60,
                f"Prometheus to scrape {name}'s final state",
            )
        # The misconfigured run has made its point once Prometheus holds the error; stop its retries.
        wait_for(
            lambda: prometheus.query(
                'proctor_reconcile_errors_total{kind="EvalRun",reason="StoreUnavailable"}'
            ),
            60,
            "the missing Secret's reconcile error",
        )
        kube("delete", "evalrun", BROKEN_RUN, "--wait=false")
        yield Runs(helm_release, judge, job)
    finally:
        judge.kill()
        prometheus.remove_job(job)
