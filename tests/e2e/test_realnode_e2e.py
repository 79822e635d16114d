"""The operator in its image, installed with the Helm chart, on the real node (kubelet + containerd +
runc, tests/cluster/realnode.py), running the HumanEval-V and ArtifactsBench examples in the worker
image from `kubectl apply` to Succeeded with the scores `proctor run` gives on this machine (issue 12).

Unlike the other e2e tests (the operator as a local process, worker pods as host processes of the test
kubelet), everything here runs in real containers with the chart's hardening enforced:

- the operator pod: `localhost/proctor-operator`, `imagePullPolicy: Never`, scheduled on the real node
  by the chart's `nodeSelector`/`tolerations`; it logs in in-cluster (its ServiceAccount token and
  `kube-root-ca.crt` from the projected volume, `KUBERNETES_SERVICE_HOST` = the `kubernetes` Service,
  which `real_node_network` routes to the API server — no kubeconfig);
- worker pods: `localhost/proctor-worker`, placed by `worker.nodeSelector`/`worker.tolerations`, with
  the chart's Localhost seccomp profile (`worker.seccompProfile`, files/seccomp/proctor-sandbox.json
  installed in the kubelet's seccomp directory), which gives the answer sandbox the `userns` tier the
  runs ask for (`spec.oracle.minIsolation` defaults to `userns`);
- the store is the session's MinIO and the ArtifactsBench judge the judge test double, both on
  127.0.0.1 and relayed to pods through the bridge address (`real_node_network.expose`).

Hardening is read from inside: a pod with the pod template of a Job the operator created (the chart's
values applied) runs tests/integration/test_images.py's probe, which reads /proc/self/status; the
operator's own process is read from the host's /proc (the container's PID from containerd), as
`kubectl exec` does not reach this kubelet.

HumanEval-V is compared with a `proctor run` of the same manifest started beside the cluster run;
ArtifactsBench (the whole example, 42 tasks) with the golden scores a local run with the same judge
double gives (tests/integration/test_judge_example.py checks a local run reproduces them), as
test_operator_benchmarks.py does: a second Chromium render of 42 pages on two cores would cost a minute.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Kube
from tests.integration.test_images import (
    HARDENING_PROBE,
    OPERATOR,
    SECCOMP_PROFILE,
    VERSION,
    WORKER,
    assert_hardened,
    require_image,
    run_probe_pod,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "proctor"
HUMANEVALV = REPO / "examples" / "humanevalv"
ARTIFACTSBENCH = REPO / "examples" / "artifactsbench"
RELEASE = "proctor-rn"  # not `proctor`: helm_release.py's release may still hold that name's ClusterRoles
UID = 10001  # values.yaml: podSecurityContext.runAsUser and worker.runAsUser


@dataclass
class RealNodeRelease:
    k8s: Any
    namespace: str  # the release's (the operator pod runs there)
    watch: str  # where the runs go
    store_prefix: str
    logs: Path  # the real kubelet's pod logs (`kubectl logs` does not reach it)

    @property
    def kube(self) -> Kube:
        return Kube(self.k8s, self.watch)

    def pod_log(self, namespace: str, name: str, tail: int = 3000) -> str:
        files = sorted(self.logs.glob(f"{namespace}_{name}_*/*/*.log"))
        return "\n".join(path.read_text()[-tail:] for path in files)

    def operator_pod(self) -> dict:
        pods = Kube(self.k8s, self.namespace).items("pods", f"app.kubernetes.io/instance={RELEASE}")
        assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
        return pods[0]

    def why(self, run: str) -> str:
        """A failed run's worker and operator logs."""
        out = []
        for pod in self.kube.items("pods", f"proctor.dev/run={run}"):
            name, phase = pod["metadata"]["name"], pod["status"].get("phase")
            out.append(f"--- worker {name}: {phase}\n{self.pod_log(self.watch, name, 1500)}")
        operator = self.operator_pod()["metadata"]["name"]
        return "\n".join(out) + f"\n--- operator\n{self.pod_log(self.namespace, operator)}"


@pytest.fixture(scope="module")
def release(k8s, s3, real_node, real_node_network, proctor_env_dir) -> Iterator[RealNodeRelease]:
    from tests.cluster import realnode

    require_image(OPERATOR)
    require_image(WORKER)
    started = time.monotonic()
    suffix = uuid.uuid4().hex[:6]
    namespace, watch = f"proctor-rn-{suffix}", f"rn-runs-{suffix}"
    for ns in (namespace, watch):
        k8s.create_namespace(ns)
    profile = realnode.install_seccomp_profile(proctor_env_dir / "realnode", SECCOMP_PROFILE)
    on_real_node = {
        "nodeSelector": {"kubernetes.io/hostname": real_node},
        "tolerations": [{"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }
    store_prefix = f"realnode-{suffix}"
    values = {
        "image": {"repository": OPERATOR.rsplit(":", 1)[0], "tag": VERSION, "pullPolicy": "Never"},
        "watchNamespaces": [watch],
        "operator": {"resyncSeconds": 1, "judgeResyncSeconds": 1, "judgeRecheckSeconds": 5,
                     "statusIntervalSeconds": 1},
        "store": {
            "url": f"s3://{s3.bucket}/{store_prefix}",
            "endpoint": real_node_network.expose(s3.endpoint),
            "region": s3.region,
            "addressing": "path",
            "credentialsSecret": "proctor-store",
            "credentials": {
                "create": True,
                "copyToWatchedNamespaces": True,  # one team: the runs' namespace gets the same keys
                "accessKeyId": s3.access_key,
                "secretAccessKey": s3.secret_key,
            },
        },
        "worker": {
            "repository": WORKER.rsplit(":", 1)[0],
            "pullPolicy": "Never",
            "seccompProfile": {"type": "Localhost", "localhostProfile": profile},
            **on_real_node,
        },
        **on_real_node,
    }  # fmt: skip
    values_file = Path(k8s.workdir) / f"helm-values-{suffix}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    logs = proctor_env_dir / "realnode" / "pod-logs"
    rel = RealNodeRelease(k8s, namespace, watch, store_prefix, logs)
    try:
        k8s.helm("install", RELEASE, str(CHART), "--namespace", namespace, "-f", str(values_file),
                 "--wait", "--timeout", "180s", timeout=240)  # fmt: skip
    except Exception:
        pods = Kube(k8s, namespace).items("pods")
        print(json.dumps([p.get("status") for p in pods], indent=1)[-3000:])
        for pod in pods:
            print(rel.pod_log(namespace, pod["metadata"]["name"]))
        raise
    print(f"helm install on the real node: {time.monotonic() - started:.1f} s")
    yield rel
    k8s.helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "120s", check=False)
    for ns in (namespace, watch):
        k8s.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def local_run(manifest: Path, store: Path, *extra: str) -> subprocess.Popen:
    """`proctor run` of the same manifest on this machine, started now and read by `local_scores`."""
    argv = [sys.executable, "-m", "proctor", "run", str(manifest), "--store", str(store), "--json", "-q",
            "--workers", "2", *extra]  # fmt: skip
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def local_scores(proc: subprocess.Popen, timeout: float = 600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])["scores"]


def wait_succeeded(rel: RealNodeRelease, name: str, timeout: float) -> dict:
    started = time.monotonic()
    run = rel.kube.wait_phase("evalrun", name, ("Succeeded", "Failed"), timeout=timeout)
    status = run["status"]
    assert status["phase"] == "Succeeded", (
        f"{name}: {status.get('conditions')}\n{ {k: v for k, v in status.items() if k != 'conditions'} }\n"
        f"{rel.why(name)}"
    )
    print(f"{name}: Succeeded on the real node in {time.monotonic() - started:.1f} s after apply")
    return status


def records(s3, status: dict, stage: str) -> list[dict]:
    """Every item record of a stage, read back from MinIO (compacted shard results and item files)."""
    bucket, prefix = status["results"]["summary"][len("s3://") :].split("/", 1)
    prefix = prefix.rsplit("/", 1)[0] + f"/{stage}/"
    client = s3.client()
    found: dict[str, dict] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            if "/results/" in obj["Key"] and obj["Key"].endswith(".jsonl"):
                rows = [json.loads(line) for line in body.splitlines() if line.strip()]
            elif "/items/" in obj["Key"]:
                rows = [json.loads(body)]
            else:
                continue
            found.update((row["id"], row) for row in rows if "id" in row and row.get("stage") == stage)
    return list(found.values())


def worker_pod_spec(rel: RealNodeRelease, run: str, stage: str | None = None) -> dict:
    """The pod template of a stage Job the operator created for `run`, the chart's values applied."""
    jobs = rel.kube.items("jobs", f"proctor.dev/run={run},proctor.dev/component=worker")
    [job] = [job for job in jobs if stage is None or job["metadata"]["name"] == f"{run}-{stage}"]
    return job["spec"]["template"]["spec"]


# ---- HumanEval-V ---------------------------------------------------------------------------------------


def test_humanevalv_example_succeeds_on_the_real_node_with_the_local_scores_in_the_userns_tier(
    release, real_node, s3, tmp_path
):
    from proctor_jobs.oracle import isolation

    local = local_run(HUMANEVALV / "evalrun.yaml", tmp_path / "local")
    kube = release.kube
    kube("apply", "-f", str(HUMANEVALV / "inputs.yaml"))
    kube("apply", "-f", str(HUMANEVALV / "evalrun.yaml"))
    status = wait_succeeded(release, "humanevalv-example", timeout=360)
    expected = local_scores(local)
    assert status["scores"] == expected
    assert (status["score"], status["scoreName"], status["progress"]) == (50.0, "pass@1", "72/72")
    # Its worker pods ran on the real node, in the worker image.
    pods = kube.items("pods", "proctor.dev/run=humanevalv-example")
    assert pods and {pod["spec"]["nodeName"] for pod in pods} == {real_node}
    spec = worker_pod_spec(release, "humanevalv-example")
    assert spec["containers"][0]["image"] == WORKER and spec["containers"][0]["imagePullPolicy"] == "Never"
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": real_node}
    assert spec["securityContext"]["seccompProfile"] == {
        "type": "Localhost",
        "localhostProfile": "proctor/sandbox.json",
    }
    # The sandbox reports the tier the run asked for (minIsolation: userns, the default) in every record
    # of a program it ran; the budget (memory and process caps) each sample ran under is recorded too.
    rows = records(s3, status, "oracle")
    assert len(rows) == 72 and all(r["status"] == "ok" for r in rows)
    ran = [r for r in rows if "isolation" in r["data"]]
    userns = isolation.describe("userns", network=False, private_root=True)
    assert len(ran) >= 60 and all(r["data"]["isolation"] == userns for r in ran), {
        r["id"]: r["data"]["isolation"] for r in ran if r["data"]["isolation"] != userns
    }
    assert {r["data"]["verdict_by"] for r in ran} == {"harness"}
    budgets = [r["data"]["budget"] for r in ran if "budget" in r["data"]]
    print("a sample's budget in a worker pod:", budgets[:1], f"({len(budgets)} of {len(ran)} records)")
    assert all(b["memory_mb"] == 2048 and b["processes"] == 64 for b in budgets)


def test_a_worker_pod_from_the_operators_job_is_hardened_and_reaches_the_userns_tier(release):
    """The stage Job's pod template as the operator created it from the chart's values, on the real
    node, running the hardening probe instead of proctor-worker: read from /proc/self/status inside."""
    if not release.kube.items("jobs", "proctor.dev/run=humanevalv-example"):
        pytest.skip("needs the HumanEval-V run of the test before")
    spec = worker_pod_spec(release, "humanevalv-example")
    report = run_probe_pod(release.k8s, release.watch, spec, HARDENING_PROBE, timeout=120)
    print("inside a worker pod of the chart-installed operator:", report)
    assert_hardened(report, UID)
    assert report["sandbox_tier"] == "userns"


# ---- the operator pod ----------------------------------------------------------------------------------


def process_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def container_pid(workdir: Path, pod: dict) -> int:
    """The host PID of a pod's first container (containerd's task for its container ID)."""
    from tests.cluster import realnode

    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    tasks = realnode.ctr(workdir, "tasks", "ls").stdout.decode().splitlines()[1:]
    pids = {line.split()[0]: int(line.split()[1]) for line in tasks if line.split()}
    return pids[container_id]


def test_the_operator_runs_in_its_image_from_the_chart_hardened_on_the_real_node(
    release, real_node, proctor_env_dir
):
    pod = release.operator_pod()
    assert pod["spec"]["nodeName"] == real_node
    [container] = pod["spec"]["containers"]
    assert container["image"] == OPERATOR and container["imagePullPolicy"] == "Never"
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    # Its main process, seen from the host: what /proc/self/status says inside the container.
    pid = container_pid(proctor_env_dir / "realnode", pod)
    status = process_status(pid)
    print("the operator's /proc/self/status:", {k: status[k] for k in ("Uid", "Gid", "CapEff", "Seccomp")})
    assert status["Uid"].split() == [str(UID)] * 4 and status["Gid"].split() == [str(UID)] * 4
    assert status["CapEff"] == "0000000000000000" and status["CapPrm"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"  # RuntimeDefault: a filter
    mounts = [line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]
    [root] = [mount for mount in mounts if mount[4] == "/"]
    assert "ro" in root[5].split(","), root
    # The operator needs the API, so its ServiceAccount token is mounted (automountServiceAccountToken:
    # true in the chart) — and it is the chart's ServiceAccount's, bound to this pod. (Its mount point
    # from the container's mount table: /var/run is a symlink the host's /proc/<pid>/root would not follow.)
    [account] = [mount[4] for mount in mounts if mount[4].endswith("/kubernetes.io/serviceaccount")]
    token = Path(f"/proc/{pid}/root{account}/token").read_text()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == f"system:serviceaccount:{release.namespace}:{RELEASE}"
    assert claims["kubernetes.io"]["pod"]["name"] == pod["metadata"]["name"]


# ---- ArtifactsBench ------------------------------------------------------------------------------------


def test_artifactsbench_example_is_rendered_and_judged_on_the_real_node_as_locally(
    release, real_node, real_node_network, judge_double_process
):
    """The whole example (42 tasks, hostile answers included): rendered by Chromium in the worker image,
    judged by the judge double through the relay, scored as `proctor run` scores it with the same double
    (the golden file tests/integration/test_judge_example.py reproduces locally in the same CI run)."""
    judge = judge_double_process()
    golden = REPO / "tests" / "fixtures" / "judge" / "artifactsbench_example_double_scores.json"
    expected = json.loads(golden.read_text())["scores"]
    kube = release.kube
    kube("apply", "--server-side", "-f", str(ARTIFACTSBENCH / "inputs.yaml"))
    url = real_node_network.expose(judge.url)
    kube.apply(
        {
            "apiVersion": "proctor.dev/v1alpha1",
            "kind": "JudgeServer",
            "metadata": {"name": "double"},
            "spec": {"external": {"baseUrl": url, "model": "judge-double"}, "maxConcurrency": 8},
        }
    )
    run = yaml.safe_load((ARTIFACTSBENCH / "evalrun.yaml").read_text())
    run["spec"]["judge"] = {"serverRef": {"name": "double"}}
    kube.apply(run)
    status = wait_succeeded(release, "artifactsbench-example", timeout=420)
    assert status["scores"] == pytest.approx(expected)
    assert status["scoreName"] == "AVG" and status["progress"] == "84/84"
    stages = {s["name"]: s for s in status["stages"]}
    assert list(stages) == ["render", "judge"]
    assert stages["render"]["total"] == stages["judge"]["succeeded"] == 42
    rendered = stages["render"]["succeeded"]
    spec = worker_pod_spec(release, "artifactsbench-example", "render")
    assert spec["containers"][0]["image"] == WORKER
    pods = kube.items("pods", "proctor.dev/run=artifactsbench-example")
    assert len(pods) >= 4 and {pod["spec"]["nodeName"] for pod in pods} == {real_node}  # 2 shards x 2 stages
    jobs = kube.items("jobs", "proctor.dev/run=artifactsbench-example,proctor.dev/component=worker")
    assert sorted(j["spec"]["completionMode"] for j in jobs) == ["Indexed", "Indexed"]  # one per stage
    # The judge pods reached the double through the relay and sent it the screenshots.
    assert sum(entry["images"] > 0 for entry in judge.log()) >= rendered
