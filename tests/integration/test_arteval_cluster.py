"""ArtEvalBench on the test control plane: one Job per artifact, built from each item's `job` requirements,
running `proctor-worker` against an S3 store (MinIO), reaches Complete with the same scores as local mode.

The Jobs are built here the way the item payload tells the operator to (image, GPU, deadline, workspace
volume); the operator's own Job builder is tested with the operator. What this proves is the data plane's
side of the contract: a per-artifact pod with nothing but its shard manifest and the store produces the
same records as `proctor run`.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import pytest

from proctor_jobs.store import open_store
from tests.integration.arteval_helpers import REPO
from tests.waiting import poll

pytestmark = pytest.mark.slow
EXAMPLE = REPO / "examples" / "artevalbench" / "evalrun.yaml"


def wait_for(what: str, check, timeout: float = 180, interval: float = 0.5) -> Any:
    return poll(what, check, timeout, interval)


def job_for(name: str, namespace: str, item_job: dict, argv: list[str], env: dict[str, str]) -> dict:
    """A Job from the item's requirements, as the contract with the operator describes them."""
    volume = (
        {"name": "workspace", "emptyDir": {}}
        if item_job["workspace"] == "emptyDir"
        else {"name": "workspace", "persistentVolumeClaim": {"claimName": item_job["workspace"]}}
    )
    container = {
        "name": "oracle",
        "image": item_job["image"] or "proctor/worker:dev",
        "command": argv,
        "env": [{"name": k, "value": v} for k, v in {**env, "PROCTOR_WORKSPACE": "/workspace"}.items()],
        "volumeMounts": [{"name": "workspace", "mountPath": "/workspace"}],
        "securityContext": {"privileged": item_job["privileged"]},
    }
    if item_job["gpu"]:
        container["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"proctor.dev/stage": "oracle"}},
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": item_job["timeout_seconds"],
            "template": {"spec": {"restartPolicy": "Never", "containers": [container], "volumes": [volume]}},
        },
    }


def test_the_example_runs_as_one_job_per_artifact_with_the_local_scores(k8s, s3, tmp_path, monkeypatch):
    from proctor.local import prepare
    from proctor.results import write_results

    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    url = f"s3://{s3.bucket}/arteval-{uuid.uuid4().hex[:8]}?addressing=path"
    local = prepare(EXAMPLE, url)
    plan = local.plan
    stage = plan.stage("oracle")
    assert stage.per_item_jobs and stage.shards == plan.total_items == 2

    namespace = f"ae-{uuid.uuid4().hex[:8]}"
    k8s.create_namespace(namespace)
    store = open_store(url)
    jobs = {}
    for index in range(stage.shards):
        manifest = store.get_json(plan.layout.shard_manifest("oracle", index))
        (item,) = manifest["items"]
        argv = [
            sys.executable,
            "-m",
            "proctor_jobs.worker",
            "--store",
            url,
            "--run",
            plan.run_prefix,
            "--stage",
            "oracle",
            "--index",
            str(index),
        ]
        name = f"arteval-{item['id']}"
        jobs[name] = item
        k8s.kubectl(
            "apply", "-f", "-", input=json.dumps(job_for(name, namespace, item["job"], argv, s3.env()))
        )

    def complete() -> Any:
        done = {}
        for name in jobs:
            status = json.loads(k8s.kubectl("get", "-n", namespace, f"job/{name}", "-o", "json").stdout)[
                "status"
            ]
            conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
            assert conditions.get("Failed") != "True", (name, status)
            if conditions.get("Complete") == "True":
                done[name] = status
        return done if len(done) == len(jobs) else None

    statuses = wait_for("one Job per artifact to complete", complete)
    assert all(s["succeeded"] == 1 for s in statuses.values())
    pods = json.loads(k8s.kubectl("get", "-n", namespace, "pods", "-o", "json").stdout)["items"]
    assert sorted(p["status"]["phase"] for p in pods) == ["Succeeded", "Succeeded"]
    assert len({p["metadata"]["labels"]["batch.kubernetes.io/job-name"] for p in pods}) == 2

    summary, records = write_results(store, plan, local.spec, {"name": "artevalbench-example"}, "Succeeded")
    scores = summary["scores"]
    assert scores["artifact/tinysort"] == 4.0 and scores["artifact/hello"] == 1.0
    assert scores["share_at_expected"] == 1.0
    tinysort = records["oracle"]["tinysort"]
    assert tinysort.data["leak_guard"] == "strict"
    assert [s["passed"] for s in tinysort.data["stages"]] == [True, True, True, True]
    assert store.exists(tinysort.evidence["evaluator.log"])
    k8s.kubectl("delete", "namespace", namespace, "--wait=false")
