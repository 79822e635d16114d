"""Issue 3's "Done when": the real test environment behaves like a cluster, an S3 store and Prometheus.

These tests exercise the fixtures of tests/cluster/pytest_plugin.py against the real binaries; they
are the proof that the operator's tests can stand on them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import procs
from tests.waiting import poll

REPO = Path(__file__).resolve().parents[2]


def wait_for(what: str, check, timeout: float = 60, interval: float = 0.2) -> Any:
    return poll(what, check, timeout, interval)


def kget(k8s: Any, *args: str) -> Any:
    """`kubectl get ... -o json`, decoded."""
    return json.loads(k8s.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture
def namespace(k8s: Any) -> str:
    """A fresh namespace per test (with its default ServiceAccount already created)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    k8s.create_namespace(name)
    return name


def py(script: str) -> list[str]:
    """A container command running `script` with the tests' own Python (the image is ignored)."""
    return [sys.executable, "-c", textwrap.dedent(script)]


# ---- Kubernetes API: CRDs ---------------------------------------------------------------------------

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.tests.proctor.dev"},
    "spec": {
        "group": "tests.proctor.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                },
                            },
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_custom_object_validation_and_status(k8s: Any, namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    k8s.kubectl("apply", "-f", "-", input=json.dumps(CRD))
    k8s.kubectl("wait", "--for=condition=Established", "crd/widgets.tests.proctor.dev", "--timeout=30s")
    api = client.CustomObjectsApi(k8s.api_client())
    args = ("tests.proctor.dev", "v1", namespace, "widgets")

    def create(spec: dict[str, Any], name: str) -> Any:
        body = {
            "apiVersion": "tests.proctor.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": spec,
        }
        return api.create_namespaced_custom_object(*args, body)

    # Discovery of a just-established CRD can lag a moment behind the condition.
    wait_for("the Widget API", lambda: _try(lambda: api.list_namespaced_custom_object(*args)), 20)
    created = create({"size": 3, "color": "red"}, "good")
    assert created["spec"] == {"size": 3, "color": "red"}

    with pytest.raises(ApiException) as refused:
        create({"size": 0, "color": "green"}, "bad")
    assert refused.value.status == 422
    assert "spec.size" in refused.value.body and "spec.color" in refused.value.body

    patched = api.patch_namespaced_custom_object_status(*args, "good", {"status": {"phase": "Polished"}})
    assert patched["status"] == {"phase": "Polished"}
    # The status subresource is the only way to status; the main resource ignores it.
    again = api.patch_namespaced_custom_object(
        *args, "good", {"status": {"phase": "Hacked"}, "spec": {"size": 4}}
    )
    assert again["status"] == {"phase": "Polished"} and again["spec"]["size"] == 4


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn() or True
    except Exception:
        return False


def test_operator_identity_is_bound_only_by_rbac(k8s: Any, namespace: str) -> None:
    def can_list() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(k8s.kubectl_path),
                f"--kubeconfig={k8s.operator_kubeconfig}",
                "-n",
                namespace,
                "get",
                "pods",
            ],
            capture_output=True,
            text=True,
        )

    denied = can_list()
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    rbac = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "pod-reader", "namespace": namespace},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "operator-reads-pods", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                # Bound as a ServiceAccount subject, exactly as the chart binds the operator.
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": k8s.operator_service_account,
                        "namespace": k8s.operator_namespace,
                    }
                ],
            },
        ],
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(rbac))
    wait_for("RBAC to allow the operator", lambda: can_list().returncode == 0, 10)


# ---- Jobs through the controller-manager, the scheduler and the test kubelet ----------------------


def test_indexed_job_runs_each_index_once_and_retries_a_failure(
    k8s: Any, namespace: str, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    script = """
        import os, sys
        shared, index = sys.argv[1], os.environ["JOB_COMPLETION_INDEX"]
        with open(os.path.join(shared, "runs.txt"), "a") as runs:
            runs.write(f"{index} {os.environ['POD_NAME']}\\n")
        marker = os.path.join(shared, "index-1-failed-once")
        if index == "1" and not os.path.exists(marker):
            open(marker, "w").close()
            print("index 1: failing on purpose", flush=True)
            sys.exit(1)
        with open(os.path.join(shared, f"done-{index}"), "x") as done:  # "x": a second success would fail
            done.write(os.environ["POD_NAME"])
        print(f"index {index} done", flush=True)
    """
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "indexed", "namespace": namespace},
        "spec": {
            "completions": 3,
            "parallelism": 2,
            "completionMode": "Indexed",
            "backoffLimitPerIndex": 1,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "work",
                            "image": "python:3.11-slim",
                            "command": [*py(script), str(shared)],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                        }
                    ],
                }
            },
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(job))

    def complete() -> Any:
        status = kget(k8s, "-n", namespace, "job/indexed").get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        assert conditions.get("Failed") != "True", status
        return status if conditions.get("Complete") == "True" else None

    status = wait_for("the Indexed Job to complete", complete, 90)
    assert status["completedIndexes"] == "0-2"
    assert status["succeeded"] == 3
    assert status["failed"] == 1  # index 1's first attempt, retried per backoffLimitPerIndex

    pods = kget(k8s, "-n", namespace, "pods", "-l", "batch.kubernetes.io/job-name=indexed")["items"]
    index_of = {
        p["metadata"]["name"]: p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        for p in pods
    }
    assert {p["spec"]["nodeName"] for p in pods} == {k8s.kubelet.node_name}
    # Each index succeeded exactly once, in a pod whose annotation names that index.
    for index in "012":
        pod_name = (shared / f"done-{index}").read_text()
        assert index_of[pod_name] == index
        assert f"index {index} done" in k8s.kubelet.pod_log(namespace, pod_name)
    runs = sorted((shared / "runs.txt").read_text().split("\n")[:-1])
    assert [r.split()[0] for r in runs] == ["0", "1", "1", "2"]
    failed = [p for p in pods if p["status"]["phase"] == "Failed"]
    assert len(failed) == 1 and index_of[failed[0]["metadata"]["name"]] == "1"
    terminated = failed[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1 and terminated["reason"] == "Error"


def test_job_with_on_failure_restarts_the_container(k8s: Any, namespace: str, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    script = f"""
        import os, sys
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            print("first attempt starting")
            print("first attempt failing", file=sys.stderr)
            sys.exit(3)
        print("second attempt succeeded")
    """
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "flaky", "namespace": namespace},
        "spec": {
            "backoffLimit": 2,
            "template": {
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "work", "image": "x", "command": py(script)}],
                }
            },
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(job))
    wait_for(
        "Job flaky to complete",
        lambda: kget(k8s, "-n", namespace, "job/flaky").get("status", {}).get("succeeded") == 1,
        60,
    )
    (pod,) = kget(k8s, "-n", namespace, "pods", "-l", "batch.kubernetes.io/job-name=flaky")["items"]
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 3
    name = pod["metadata"]["name"]
    assert "second attempt succeeded" in k8s.kubelet.pod_log(namespace, name)
    assert "first attempt failing" in k8s.kubelet.pod_log(namespace, name, previous=True)
    # The same through the API server (pods/log, the test kubelet's log endpoint), bounded as asked.
    assert k8s.kubectl("logs", "-n", namespace, name).stdout == "second attempt succeeded\n"
    previous = k8s.kubectl("logs", "-n", namespace, name, "--previous", "--tail", "1").stdout
    assert previous.strip() in ("first attempt failing", "first attempt starting")  # stdout/stderr order
    assert len(k8s.kubectl("logs", "-n", namespace, name, "--previous", "--limit-bytes", "5").stdout) == 5


# ---- what reaches the process -----------------------------------------------------------------------


def test_env_refs_downward_api_and_volume_path_rewrite(k8s: Any, namespace: str) -> None:
    k8s.kubectl(
        "-n",
        namespace,
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--from-literal=level=7",
        "--from-literal=file.txt=from a configmap volume",
    )
    k8s.kubectl("-n", namespace, "create", "secret", "generic", "creds", "--from-literal=password=s3cr3t")
    script = """
        import json, os, sys
        out = os.environ["OUT_DIR"]
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "report.json"), "w") as f:
            json.dump({"env": dict(os.environ), "argv": sys.argv[1:], "cwd": os.getcwd(),
                       "config": open(os.environ["CONFIG_FILE"]).read()}, f)
        print("report written")
    """
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "envcheck",
            "namespace": namespace,
            "labels": {"app": "envcheck"},
            "annotations": {"note": "hello"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "settings", "configMap": {"name": "settings"}},
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "ignored",
                    "command": py(script),
                    "args": ["--out=/scratch/results", "$(MODE)-$(LEVEL)", "$$(MODE)"],
                    "workingDir": "/scratch",
                    "volumeMounts": [
                        {"name": "scratch", "mountPath": "/scratch"},
                        {"name": "settings", "mountPath": "/etc/settings"},
                    ],
                    "envFrom": [{"prefix": "CM_", "configMapRef": {"name": "settings"}}],
                    "env": [
                        {
                            "name": "MODE",
                            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}},
                        },
                        {
                            "name": "LEVEL",
                            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}},
                        },
                        {
                            "name": "PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
                        },
                        {
                            "name": "MISSING",
                            "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}},
                        },
                        {"name": "OUT_DIR", "value": "/scratch/results"},
                        {"name": "CONFIG_FILE", "value": "/etc/settings/file.txt"},
                        {"name": "COMBINED", "value": "$(MODE)/$(PASSWORD)"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                        {
                            "name": "NOTE",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}},
                        },
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                        {
                            "name": "MEM_MI",
                            "valueFrom": {
                                "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}
                            },
                        },
                    ],
                    "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}},
                }
            ],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_for(
        "pod envcheck to succeed",
        lambda: kget(k8s, "-n", namespace, "pod/envcheck")["status"].get("phase") == "Succeeded",
        30,
    )

    pod_dir = k8s.kubelet.pod_dir(namespace, "envcheck")
    scratch = pod_dir / "volumes" / "scratch"
    report = json.loads((scratch / "results" / "report.json").read_text())
    env = report["env"]
    uid = kget(k8s, "-n", namespace, "pod/envcheck")["metadata"]["uid"]
    assert env["MODE"] == "fast" and env["LEVEL"] == "7" and env["CM_mode"] == "fast"
    assert env["PASSWORD"] == "s3cr3t" and "MISSING" not in env
    assert env["COMBINED"] == "fast/s3cr3t"
    assert (env["POD_NAME"], env["POD_NS"], env["POD_UID"]) == ("envcheck", namespace, uid)
    assert (env["APP"], env["NOTE"], env["NODE"], env["POD_IP"], env["SA"]) == (
        "envcheck",
        "hello",
        k8s.kubelet.node_name,
        "127.0.0.1",
        "default",
    )
    assert env["MEM_MI"] == "256"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == k8s.server.rsplit(":", 1)[1]
    assert "KUBECONFIG" not in env  # automountServiceAccountToken: false
    # Mount paths are rewritten to the volumes' host directories; $(VAR) expands, $$ escapes.
    assert env["OUT_DIR"] == str(scratch / "results")
    assert report["argv"] == [f"--out={scratch}/results", "fast-7", "$(MODE)"]
    assert report["cwd"] == str(scratch)
    assert report["config"] == "from a configmap volume"
    assert k8s.kubelet.pod_log(namespace, "envcheck") == "report written\n"


def test_pod_gets_its_service_account_credentials(k8s: Any, namespace: str) -> None:
    k8s.kubectl("-n", namespace, "create", "serviceaccount", "runner")
    script = """
        import json, os, ssl, urllib.request, yaml
        config = yaml.safe_load(open(os.environ["KUBECONFIG"]))
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
        req = urllib.request.Request(cluster["server"] + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                     data=body, headers={"Authorization": "Bearer " + user["token"],
                                                         "Content-Type": "application/json"})
        ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        review = json.load(urllib.request.urlopen(req, context=ctx))
        print(review["status"]["userInfo"]["username"])
        token = open("/var/run/secrets/kubernetes.io/serviceaccount/token").read()
        print("token file matches:", token == user["token"])
    """
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "whoami", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "runner",
            "containers": [{"name": "main", "image": "x", "command": py(script)}],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_for(
        "pod whoami to finish",
        lambda: kget(k8s, "-n", namespace, "pod/whoami")["status"].get("phase") in ("Succeeded", "Failed"),
        30,
    )
    out = k8s.kubelet.pod_log(namespace, "whoami")
    assert f"system:serviceaccount:{namespace}:runner\n" in out, out
    assert "token file matches: True" in out


# ---- lifecycle: deletion, deadlines, readiness --------------------------------------------------


def test_deleting_a_running_pod_kills_its_process(k8s: Any, namespace: str, tmp_path: Path) -> None:
    flag = tmp_path / "got-sigterm"
    script = f"""
        import os, signal, sys, time, subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(tmp_path / "child.pid")!r}, "w").write(str(child.pid))
        def stop(*_):
            open({str(flag)!r}, "w").close()
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        print("running", flush=True)
        time.sleep(600)
    """
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper", "namespace": namespace},
        "spec": {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "main", "image": "x", "command": py(script)}],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_for("pod sleeper to run", lambda: "running" in k8s.kubelet.pod_log(namespace, "sleeper"), 30)
    status = kget(k8s, "-n", namespace, "pod/sleeper")["status"]
    assert status["phase"] == "Running" and status["containerStatuses"][0]["ready"] is True
    pid = k8s.kubelet.pod_pids(namespace, "sleeper")["main"]
    child = int(
        wait_for(
            "child pid", lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text()
        )
    )
    assert procs.pid_alive(pid) and procs.pid_alive(child)

    started = time.monotonic()
    k8s.kubectl("-n", namespace, "delete", "pod", "sleeper", "--wait=true", "--timeout=30s")
    assert time.monotonic() - started < 15
    assert not procs.pid_alive(pid)
    assert not procs.pid_alive(child)  # the whole process group goes
    assert flag.exists()  # it was asked politely first (SIGTERM)
    gone = k8s.kubectl("-n", namespace, "get", "pod", "sleeper", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_active_deadline_fails_the_pod(k8s: Any, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "slow", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 2,
            "containers": [{"name": "main", "image": "x", "command": py("import time; time.sleep(600)")}],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))
    status = wait_for(
        "pod slow to fail",
        lambda: (s := kget(k8s, "-n", namespace, "pod/slow")["status"]).get("phase") == "Failed" and s,
        30,
    )
    assert status["reason"] == "DeadlineExceeded"
    assert not procs.pid_alive(k8s.kubelet.pod_pids(namespace, "slow")["main"])


def test_deployment_becomes_available_through_a_readiness_probe(k8s: Any, namespace: str) -> None:
    port = procs.free_port()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "x",
                            "command": [
                                sys.executable,
                                "-m",
                                "http.server",
                                "--bind",
                                "127.0.0.1",
                                str(port),
                            ],
                            "ports": [{"name": "http", "containerPort": port}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                        }
                    ]
                },
            },
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(deployment))
    k8s.kubectl("-n", namespace, "rollout", "status", "deployment/web", "--timeout=60s")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        assert resp.status == 200
    k8s.kubectl("-n", namespace, "delete", "deployment", "web", "--wait=true")
    wait_for(
        "the web pod to go", lambda: not kget(k8s, "-n", namespace, "pods", "-l", "app=web")["items"], 30
    )
    assert not procs.port_open(port)


# ---- S3 -----------------------------------------------------------------------------------------


def test_s3_round_trip_and_wrong_secret_refused(s3: Any) -> None:
    from botocore.exceptions import ClientError

    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="dir/hello.txt", Body=b"hello s3")
    assert client.get_object(Bucket=s3.bucket, Key="dir/hello.txt")["Body"].read() == b"hello s3"
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/hello.txt"]

    part1, part2 = os.urandom(5 * 1024 * 1024 + 17), os.urandom(1024 * 1024)
    upload = client.create_multipart_upload(Bucket=s3.bucket, Key="big.bin")
    parts = []
    for number, data in enumerate((part1, part2), start=1):
        etag = client.upload_part(
            Bucket=s3.bucket, Key="big.bin", UploadId=upload["UploadId"], PartNumber=number, Body=data
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    client.complete_multipart_upload(
        Bucket=s3.bucket, Key="big.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    head = client.head_object(Bucket=s3.bucket, Key="big.bin")
    assert head["ContentLength"] == len(part1) + len(part2) and head["ETag"].endswith('-2"')

    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": s3.bucket, "Key": "big.bin"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == part1 + part2

    env = s3.env()
    assert env["AWS_ENDPOINT_URL"] == s3.endpoint and env["AWS_DEFAULT_REGION"] == "us-east-1"
    bad = s3.client(aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as refused:
        bad.get_object(Bucket=s3.bucket, Key="dir/hello.txt")
    error = refused.value.response
    assert (
        error["Error"]["Code"] == "SignatureDoesNotMatch"
        or error["ResponseMetadata"]["HTTPStatusCode"] == 403
    )
    with pytest.raises(ClientError):
        s3.client(aws_access_key_id="nobody").list_objects_v2(Bucket=s3.bucket)


# ---- Prometheus ------------------------------------------------------------------------------------


def test_prometheus_scrapes_an_exporter(prometheus: Any) -> None:
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    gauge = Gauge("proctor_test_answer", "a value for the scrape test", ["kind"], registry=registry)
    gauge.labels(kind="truth").set(42.5)
    port = procs.free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prometheus.add_target("proctor-test-exporter", f"127.0.0.1:{port}")
        result = prometheus.wait_for('proctor_test_answer{job="proctor-test-exporter"}', timeout=30)
        assert result[0]["metric"]["kind"] == "truth"
        assert float(result[0]["value"][1]) == 42.5
        gauge.labels(kind="truth").set(7)
        prometheus.wait_for('proctor_test_answer{job="proctor-test-exporter"} == 7', timeout=15)
    finally:
        server.shutdown()
        thread.join(5)
        prometheus.remove_job("proctor-test-exporter")


# ---- the whole environment: warm start time, and nothing left behind ---------------------------


def test_environment_starts_warm_under_15s_and_leaves_no_process(tmp_path: Path, k8s: Any) -> None:
    """`python -m tests.cluster up --time` in a second state dir, a pod in it, then `down`."""
    state = tmp_path / "devenv"
    began = time.monotonic()

    def phase(name: str) -> None:  # shown with `pytest -s`
        print(f"[{time.monotonic() - began:6.2f} s] {name}")

    cmd = [sys.executable, "-m", "tests.cluster"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    up = subprocess.run(
        [*cmd, "up", "--time", f"--state-dir={state}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        assert up.returncode == 0, up.stderr
        seconds = float(re.search(r"environment ready in ([0-9.]+) s", up.stdout + up.stderr).group(1))
        phase(f"up: warm start of the whole environment took {seconds:.2f} s")
        # 15 s is the issue's bound; PROCTOR_WARM_START_LIMIT loosens it on a machine shared with heavy jobs.
        assert seconds < float(os.environ.get("PROCTOR_WARM_START_LIMIT", "15"))
        exports = subprocess.run(
            [*cmd, "env", f"--state-dir={state}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name in (
            "KUBECONFIG",
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "PROMETHEUS_URL",
        ):
            assert f"export {name}=" in exports
        kubeconfig = re.search(r"export KUBECONFIG=(\S+)", exports).group(1).strip("'")
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "lingerer", "namespace": "default"},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "x",
                        "command": py("import time; print('up', flush=True); time.sleep(900)"),
                    }
                ]
            },
        }
        subprocess.run(
            [str(k8s.kubectl_path), f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
            input=json.dumps(pod),
            text=True,
            check=True,
            capture_output=True,
        )
        pod_pid_file = state / "k8s" / "pods" / "default" / "lingerer" / "pids" / "main"
        wait_for("the dev env's pod to start", pod_pid_file.exists, 30)
        phase("a pod runs in it")
        pids = json.loads((state / "pids.json").read_text())
        pod_pid = int(pod_pid_file.read_text())
        assert all(procs.pid_alive(p) for p in [*pids.values(), pod_pid]), pids
    finally:
        down = subprocess.run(
            [*cmd, "down", f"--state-dir={state}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    phase("down")
    assert down.returncode == 0, down.stderr
    left = [p for p in [*pids.values(), pod_pid] if procs.pid_alive(p)]
    assert not left, f"processes left after down: {left}"


def test_dozens_of_pods_run_concurrently(k8s: Any, namespace: str, tmp_path: Path) -> None:
    script = """
        import os, sys, time
        start = time.time()
        time.sleep(2)
        with open(os.path.join(sys.argv[1], os.environ["JOB_COMPLETION_INDEX"]), "w") as f:
            f.write(f"{start} {time.time()}")
    """
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "wide", "namespace": namespace},
        "spec": {
            "completions": 30,
            "parallelism": 15,
            "completionMode": "Indexed",
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "work", "image": "x", "command": [*py(script), str(tmp_path)]}],
                }
            },
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(job))
    wait_for(
        "Job wide to complete",
        lambda: kget(k8s, "-n", namespace, "job/wide").get("status", {}).get("succeeded") == 30,
        120,
    )
    spans = [tuple(map(float, (tmp_path / str(i)).read_text().split())) for i in range(30)]
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    print(f"peak concurrent pods: {peak}")
    assert peak >= 10


def test_init_containers_then_sidecar_and_main(k8s: Any, namespace: str, tmp_path: Path) -> None:
    order = tmp_path / "order.txt"

    def step(name: str, extra: str = "") -> list[str]:
        # Each container records when its process was started (field 22 of /proc/self/stat, in clock
        # ticks since boot), not when it got round to writing: interpreter start-up time varies.
        started = "open('/proc/self/stat').read().rsplit(')', 1)[1].split()[19]"
        return py(f"open({str(order)!r}, 'a').write({name!r} + ' ' + {started} + '\\n'){extra}")

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "staged", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "initContainers": [
                {"name": "first", "image": "x", "command": step("first")},
                {"name": "second", "image": "x", "command": step("second")},
                {
                    "name": "sidecar",
                    "image": "x",
                    "restartPolicy": "Always",
                    "command": step("sidecar", "; import time; time.sleep(600)"),
                },
            ],
            "containers": [
                {"name": "main", "image": "x", "command": step("main", "; import time; time.sleep(1)")}
            ],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))
    status = wait_for(
        "pod staged to succeed",
        lambda: (s := kget(k8s, "-n", namespace, "pod/staged")["status"]).get("phase") == "Succeeded" and s,
        30,
    )
    started = dict(line.split() for line in order.read_text().splitlines())
    assert set(started) == {"first", "second", "sidecar", "main"}
    ticks = [int(started[name]) for name in ("first", "second", "sidecar", "main")]
    assert ticks == sorted(ticks), f"containers started out of order: {started}"
    inits = {c["name"]: c["state"] for c in status["initContainerStatuses"]}
    assert inits["first"]["terminated"]["exitCode"] == 0
    assert "terminated" in inits["sidecar"]  # stopped once the main container finished
    assert not procs.pid_alive(k8s.kubelet.pod_pids(namespace, "staged")["sidecar"])

    failing = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "blocked", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "initContainers": [{"name": "check", "image": "x", "command": py("raise SystemExit(2)")}],
            "containers": [{"name": "main", "image": "x", "command": step("never")}],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(failing))
    status = wait_for(
        "pod blocked to fail",
        lambda: (s := kget(k8s, "-n", namespace, "pod/blocked")["status"]).get("phase") == "Failed" and s,
        30,
    )
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert "never" not in order.read_text()


def test_missing_executable_is_a_start_error(k8s: Any, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nocmd", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "x", "command": ["no-such-program-proctor"]}],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))
    status = wait_for(
        "pod nocmd to fail",
        lambda: (s := kget(k8s, "-n", namespace, "pod/nocmd")["status"]).get("phase") == "Failed" and s,
        30,
    )
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "StartError" and terminated["exitCode"] == 128
    assert "executable file not found" in terminated["message"]


def test_exec_readiness_and_tcp_liveness_probes(k8s: Any, namespace: str) -> None:
    ready_check = "import os, sys; sys.exit(not os.path.exists('/scratch/ready'))"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probed", "namespace": namespace},
        "spec": {
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [
                {
                    "name": "slow-ready",
                    "image": "x",
                    "command": py(
                        "import time; time.sleep(1.5); open('/scratch/ready', 'w'); time.sleep(600)"
                    ),
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                    # The probe's command is rewritten like the container's: /scratch is the emptyDir.
                    "readinessProbe": {
                        "exec": {"command": ["python", "-c", ready_check]},
                        "periodSeconds": 1,
                    },
                },
                {
                    "name": "dead-port",
                    "image": "x",
                    "command": py("import time; time.sleep(600)"),
                    "livenessProbe": {
                        "tcpSocket": {"port": procs.free_port()},
                        "periodSeconds": 1,
                        "failureThreshold": 2,
                    },
                },
            ],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))

    def statuses() -> dict[str, Any]:
        status = kget(k8s, "-n", namespace, "pod/probed")["status"]
        return {c["name"]: c for c in status.get("containerStatuses", [])}

    first = wait_for(
        "slow-ready to start", lambda: statuses().get("slow-ready", {}).get("started") and statuses(), 20
    )
    assert first["slow-ready"]["ready"] is False  # the ready file is not there yet
    wait_for("slow-ready to become ready", lambda: statuses()["slow-ready"]["ready"], 20)
    dead = wait_for(
        "the liveness probe to restart dead-port",
        lambda: (c := statuses()["dead-port"])["restartCount"] >= 1 and c,
        30,
    )
    assert dead["lastState"]["terminated"]["exitCode"] == 137  # SIGKILLed by the failed liveness probe


def test_force_deleted_pod_is_killed_too(k8s: Any, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "forced", "namespace": namespace},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "x",
                    "command": py("import time; print('up', flush=True); time.sleep(600)"),
                }
            ]
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_for("pod forced to run", lambda: "up" in k8s.kubelet.pod_log(namespace, "forced"), 30)
    pid = k8s.kubelet.pod_pids(namespace, "forced")["main"]
    # Gone from the API at once (no graceful phase): the kubelet only sees a DELETED event.
    k8s.kubectl("-n", namespace, "delete", "pod", "forced", "--grace-period=0", "--force")
    wait_for("the process of the force-deleted pod to end", lambda: not procs.pid_alive(pid), 10)
