"""A finished run's summary and reports are made by its aggregate Job, confined like a worker pod, never
in the operator's process; `proctor aggregate` writes what a local run writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from proctor.k8s.jobs import AGGREGATE_COMPONENT, build_aggregate_job
from proctor.plan import Plan, read_plan
from proctor.reconcile.evalrun import aggregate_request
from proctor_jobs.layout import RunLayout
from proctor_jobs.store import open_store
from tests.unit.test_k8s_builders import ctx

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "humanevalv"


def test_the_aggregate_job_is_a_hardened_worker_pod_running_proctor_aggregate():
    job = build_aggregate_job(
        ctx(queueName="gpu-queue", images={"default": "tenant/own:1"}), "0123456789abcdef"
    )
    assert job["metadata"]["name"] == "my-run-aggregate-01234567"
    labels = job["metadata"]["labels"]
    assert labels["proctor.dev/component"] == AGGREGATE_COMPONENT and labels["proctor.dev/run-uid"] == "uid-1"
    assert "kueue.x-k8s.io/queue-name" not in labels, "the run was admitted: its report does not queue"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert job["spec"]["activeDeadlineSeconds"] > 0 and job["spec"]["backoffLimit"] >= 1
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["proctor", "aggregate"]
    assert container["args"] == [
        "--store",
        "s3://bucket/proctor?addressing=path",
        "--run",
        "runs/team/my-run/uid-1",
    ]
    assert container["image"] == "worker:1", "Proctor's own image, not one the run names"
    assert container["envFrom"] == [{"secretRef": {"name": "store-creds"}}]
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert not any(e["name"] == "OPENAI_API_KEY" for e in container["env"]), "no judge key to aggregate"


def _plan(shards: int = 2) -> Plan:
    return Plan.from_dict(
        {
            "run_prefix": "runs/a/b/c",
            "benchmark": "humanevalv",
            "shard_size": 2,
            "total_items": 4,
            "stages": [
                {
                    "name": "oracle",
                    "kind": "oracle",
                    "shards": shards,
                    "items": 4,
                    "upstream": None,
                    "config": {},
                    "config_hash": "h1",
                }
            ],
        }
    )


def test_one_finish_asks_once_and_a_changed_plan_asks_anew():
    run = {"name": "b", "namespace": "a"}
    first = aggregate_request(_plan(), {"x": 1}, run, "Failed", "StageFailed", "3 of 4 shards")
    reworded = aggregate_request(_plan(), {"x": 1}, run, "Failed", "StageFailed", "3 of 4 shards, 1 left")
    assert first["id"] == reworded["id"], "the message's wording is no new request"
    assert aggregate_request(_plan(), {"x": 1}, run, "Succeeded", "Succeeded", "")["id"] != first["id"]
    assert aggregate_request(_plan(3), {"x": 1}, run, "Failed", "StageFailed", "")["id"] != first["id"]
    assert first["spec"] == {"x": 1} and first["run"] == run and first["message"] == "3 of 4 shards"


def test_proctor_aggregate_writes_the_summary_a_local_run_writes(tmp_path):
    store_dir = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run", str(EXAMPLE / "evalrun-n1.yaml"), "--store", str(store_dir),
         "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    local = json.loads(done.stdout.strip().splitlines()[-1])
    store = open_store(str(store_dir))
    layout = RunLayout(local["run_prefix"])
    expected = store.get_json(layout.summary)
    for key in (layout.summary, layout.report_md, layout.report_html, f"{layout.prefix}/records.jsonl"):
        store.delete(key)
    plan = read_plan(store, layout.prefix)
    spec = {"benchmark": {}, "answers": {}}
    request = aggregate_request(
        plan, spec, {"name": "n1", "namespace": "evals"}, "Succeeded", "Succeeded", ""
    )
    store.put_json(layout.aggregate_request, request)
    ran = subprocess.run(
        [sys.executable, "-m", "proctor", "aggregate", "--store", str(store_dir), "--run", layout.prefix],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert store.get_json(layout.aggregate_done) == {"id": request["id"], "phase": "Succeeded"}
    summary = store.get_json(layout.summary)
    assert summary["scores"] == expected["scores"] and summary["counts"] == expected["counts"]
    assert summary["run"] == {"name": "n1", "namespace": "evals"}
    assert store.exists(layout.report_html) and store.exists(f"{layout.prefix}/records.jsonl")
