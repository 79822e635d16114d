"""From `kubectl apply` to Succeeded on the real control plane, with the scores `proctor run` gives."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import create_store_secret, record_versions, wait_for
from tests.integration.test_local_humanevalv import EXPECTED_N1, EXPECTED_N6

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "humanevalv"


def test_humanevalv_example_runs_to_succeeded_with_the_local_scores(kube, operator, s3):
    kube("apply", "-f", str(EXAMPLE))
    run = kube.wait_phase("evalrun", "humanevalv-example", ("Succeeded", "Failed"), timeout=240)
    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["scores"] == EXPECTED_N6
    assert (status["score"], status["scoreName"], status["progress"]) == (50.0, "pass@1", "72/72")
    assert status["stages"] == [
        {
            "name": "oracle",
            "total": 72,
            "succeeded": 72,
            "failed": 0,
            "skipped": 0,
            "shards": 3,
            "shardsDone": 3,
            "job": "humanevalv-example-oracle",
        }
    ]
    # What it cost, final once aggregated: what the oracle's workers measured about themselves.
    cost = status["cost"]
    assert cost["final"] is True and [s["name"] for s in cost["stages"]] == ["oracle"]
    (oracle,) = cost["stages"]
    assert oracle["items"] == 72 and oracle["calls"] == 0
    assert oracle["wallSeconds"] > 0 and oracle["bytesWritten"] > 0
    assert cost["total"]["bytesWritten"] == oracle["bytesWritten"]
    n1 = kube.wait_phase("evalrun", "humanevalv-example-n1", ("Succeeded", "Failed"))
    assert n1["status"]["scores"] == EXPECTED_N1

    # One Indexed Job for the stage, owned by the run, with hardened pods.
    [job] = kube.items("jobs", "proctor.dev/run=humanevalv-example,proctor.dev/component=worker")
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 2)
    assert spec["backoffLimitPerIndex"] == 2 and spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["action"] == "Ignore"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "EvalRun"
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    policy = kube.get("networkpolicy", "humanevalv-example-workers")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]

    # The same numbers in the printer columns, and a results Artifact pointing at the records.
    table = kube("get", "evalruns").stdout
    row = next(line for line in table.splitlines() if line.startswith("humanevalv-example "))
    assert row.split()[1:5] == ["humanevalv", "Succeeded", "72/72", "50"]
    assert status["results"]["artifact"] == "humanevalv-example-results"
    artifact = kube.wait_phase("artifact", "humanevalv-example-results", ("Ready", "Invalid"), timeout=120)
    assert artifact["status"]["phase"] == "Ready" and artifact["status"]["items"] == 72
    summary_key = status["results"]["summary"].split("/", 3)[3]
    assert s3.client().head_object(Bucket=s3.bucket, Key=summary_key)


def test_a_killed_operator_restarts_into_the_same_end_state(kube, operator, s3):
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube("apply", "-f", str(EXAMPLE / "evalrun.yaml"))
    wait_for(lambda: kube.items("jobs", "proctor.dev/run=humanevalv-example"), 60, "the stage Job")
    operator.kill()
    time.sleep(3)
    operator.start()
    operator.kill()  # and once more, right after a restart
    operator.start()
    run = kube.wait_phase("evalrun", "humanevalv-example", ("Succeeded", "Failed"), timeout=240)
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["scores"] == EXPECTED_N6
    jobs = kube.items("jobs", "proctor.dev/run=humanevalv-example,proctor.dev/component=worker")
    assert len(jobs) == 1  # no duplicate Jobs
    versions = record_versions(s3, s3.bucket, f"e2e-{kube.namespace}/{run['status']['runPrefix']}/")
    assert len(versions) == 72 and set(versions.values()) == {1}  # no item worked twice to completion


def test_a_worker_pod_killed_mid_shard_costs_only_its_unfinished_items(kube, operator, s3):
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    run = yaml_run("humanevalv-one-shard", shard_size=72)
    kube.apply(run)

    def busy_pod():
        for pod in kube.items("pods", "proctor.dev/run=humanevalv-one-shard"):
            if (pod.get("status") or {}).get("phase") == "Running":
                return pod
        return None

    pod = wait_for(busy_pod, 90, "a running worker pod")
    prefix_of = lambda: (kube.get("evalrun", "humanevalv-one-shard").get("status") or {}).get("runPrefix")  # noqa: E731
    prefix = wait_for(prefix_of, 30, "the run prefix")
    store_prefix = f"e2e-{kube.namespace}/{prefix}/oracle/items/"
    wait_for(lambda: len(record_versions(s3, s3.bucket, store_prefix)) >= 5, 90, "a few finished items")
    kube("delete", "pod", pod["metadata"]["name"], "--wait=false")
    final = kube.wait_phase("evalrun", "humanevalv-one-shard", ("Succeeded", "Failed"), timeout=300)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    assert final["status"]["scores"] == EXPECTED_N6
    versions = record_versions(s3, s3.bucket, store_prefix)
    assert len(versions) == 72 and set(versions.values()) == {1}


def yaml_run(name: str, shard_size: int = 24, **spec) -> dict:
    return {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "metadata": {"name": name},
        "spec": {
            "benchmark": {"artifactRef": {"name": "humanevalv-example-tasks"}},
            "answers": {"artifactRef": {"name": "humanevalv-example-answers-n6"}},
            "sharding": {"shardSize": shard_size},
            "parallelism": 2,
            **spec,
        },
    }


def test_a_bad_manifest_is_refused_by_the_api_server_with_the_field_named(kube):
    bad = yaml_run("bad-run", shard_size=0)
    out = kube("apply", "-f", "-", input=__import__("yaml").safe_dump(bad), check=False)
    assert out.returncode != 0
    assert "spec.sharding.shardSize" in out.stderr
    unknown = yaml_run("bad-run-2")
    unknown["spec"]["shardz"] = 3
    out = kube("apply", "-f", "-", input=__import__("yaml").safe_dump(unknown), check=False)
    assert out.returncode != 0 and "shardz" in out.stderr
    two_sources = yaml_run("bad-run-3")
    two_sources["spec"]["benchmark"]["source"] = {"inline": [{"qid": "q"}]}
    out = kube("apply", "-f", "-", input=__import__("yaml").safe_dump(two_sources), check=False)
    assert out.returncode != 0 and "exactly one of artifactRef, source" in out.stderr


def test_suspend_and_resume(kube, operator):
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(yaml_run("suspended-run", suspend=True))
    kube.wait_phase("evalrun", "suspended-run", ("Suspended",), timeout=60)
    [job] = wait_for(lambda: kube.items("jobs", "proctor.dev/run=suspended-run"), 60, "the Job")
    assert job["spec"]["suspend"] is True
    assert not kube.items("pods", "proctor.dev/run=suspended-run")
    kube("patch", "evalrun", "suspended-run", "--type=merge", "-p", '{"spec": {"suspend": false}}')
    final = kube.wait_phase("evalrun", "suspended-run", ("Succeeded", "Failed"), timeout=240)
    assert final["status"]["scores"] == EXPECTED_N6


def test_a_queue_name_creates_suspended_jobs_labelled_for_kueue(kube, operator):
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(yaml_run("queued-run", queueName="team-a"))
    [job] = wait_for(lambda: kube.items("jobs", "proctor.dev/run=queued-run"), 60, "the Job")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["spec"]["suspend"] is True  # Kueue admits it by unsuspending; no Kueue here, so it waits
    # Held by the queue (no Kueue here admits it): the run says Queued, not "stage Jobs are running".
    run = kube.wait_phase("evalrun", "queued-run", ("Queued",), timeout=60)
    ready = next(c for c in run["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Queued" and "team-a" in run["status"]["message"]
    time.sleep(3)
    assert kube.get("job", job["metadata"]["name"])["spec"]["suspend"] is True  # the operator does not fight
    assert kube.get("evalrun", "queued-run")["status"]["phase"] == "Queued"


def test_a_planned_runs_spec_is_fixed_but_suspend_and_parallelism(kube, operator):
    """The CRD's transition rules (api/immutability.py): once status.runPrefix is set, an edit of
    spec.benchmark is refused by the API server naming what may change; parallelism is accepted and
    reaches the Job. A queue no Kueue serves keeps the run from doing any work meanwhile."""
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(yaml_run("frozen-run", queueName="nobody"))
    wait_for(lambda: (kube.get("evalrun", "frozen-run").get("status") or {}).get("runPrefix"), 60, "the plan")
    [job] = wait_for(lambda: kube.items("jobs", "proctor.dev/run=frozen-run"), 60, "the Job")
    assert job["spec"]["parallelism"] == 2
    other = '{"spec": {"benchmark": {"artifactRef": {"name": "humanevalv-example-answers-n6"}}}}'
    out = kube("patch", "evalrun", "frozen-run", "--type=merge", "-p", other, check=False)
    assert out.returncode != 0
    assert "spec.benchmark cannot change once the run is planned" in out.stderr
    assert "only spec.suspend, spec.parallelism, spec.judgeAggregate, spec.humanRatings may" in out.stderr
    before = kube.get("evalrun", "frozen-run")["spec"]
    assert before["benchmark"] == {"artifactRef": {"name": "humanevalv-example-tasks"}}
    kube("patch", "evalrun", "frozen-run", "--type=merge", "-p", '{"spec": {"parallelism": 3}}')
    wait_for(
        lambda: kube.get("job", job["metadata"]["name"])["spec"]["parallelism"] == 3, 30, "parallelism 3"
    )


def test_deleting_a_run_removes_its_jobs_and_keeps_its_data(kube, operator, s3, k8s):
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(yaml_run("short-lived"))
    run = kube.wait_phase("evalrun", "short-lived", ("Succeeded", "Failed"), timeout=240)
    prefix = f"e2e-{kube.namespace}/{run['status']['runPrefix']}/summary.json"
    kube("delete", "evalrun", "short-lived")
    wait_for(
        lambda: not kube.items("jobs", "proctor.dev/run=short-lived"), 90, "garbage collection of the Jobs"
    )
    assert s3.client().head_object(Bucket=s3.bucket, Key=prefix)


def test_a_missing_store_secret_is_reported_and_the_run_starts_once_it_exists(kube, operator, s3):
    """Both Secrets a run's store needs: one it names (the operator reads it to open the store), and
    the operator's store.credentialsSecret its pods read (the operator does not: without it every pod
    would wait on it while the run said Running). Either missing holds the run Pending, saying which."""
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    run = yaml_run("own-credentials")
    run["spec"]["storage"] = {"credentialsSecretRef": {"name": "team-store"}}
    kube.apply(run)
    kube("delete", "secret", "proctor-store")
    kube.apply(yaml_run("pods-credentials"))

    def inputs_condition():
        status = (kube.get("evalrun", "pods-credentials") or {}).get("status") or {}
        found = next((c for c in status.get("conditions") or [] if c["type"] == "InputsReady"), None)
        return found if found and found["status"] == "False" else None

    held = wait_for(inputs_condition, 60, "an InputsReady=False condition")
    assert held["reason"] == "StoreSecretMissing" and "proctor-store" in held["message"]
    assert kube.phase("evalrun", "pods-credentials") == "Pending"
    assert not kube.items("jobs", "proctor.dev/run=pods-credentials")

    def store_condition():
        status = (kube.get("evalrun", "own-credentials") or {}).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == "StoreReady"), None)

    condition = wait_for(store_condition, 60, "a StoreReady condition")
    assert condition["reason"] == "StoreUnavailable" and "team-store" in condition["message"]
    assert kube.phase("evalrun", "own-credentials") == "Pending"
    create_store_secret(kube.k8s, kube.namespace, s3, "team-store")
    create_store_secret(kube.k8s, kube.namespace, s3)
    for name in ("own-credentials", "pods-credentials"):
        final = kube.wait_phase("evalrun", name, ("Succeeded", "Failed"), timeout=240)
        assert final["status"]["scores"] == EXPECTED_N6


def test_a_node_below_the_runs_isolation_fails_the_run_with_the_reason(k8s, s3, namespace, tmp_path):
    """Worker pods that can only get the `none` sandbox tier (as under seccomp RuntimeDefault) refuse
    HumanEval-V shards (default minIsolation `userns`); the run ends Failed / EnvironmentFailure naming
    `isolation_below_minimum`, not Succeeded on no items. The test kubelet runs pods as root processes,
    so the weaker tier is forced with the sandbox's own lowering switch in the worker command (the real
    RuntimeDefault pod is tests/integration/test_images.py's)."""
    from tests.e2e.conftest import PYTHON, Kube, OperatorProcess

    lowered = ["env", "PROCTOR_SANDBOX_TIER=none", PYTHON, "-m", "proctor_jobs.worker"]
    op = OperatorProcess(
        k8s, s3, namespace, tmp_path, extra_env={"PROCTOR_WORKER_COMMAND": json.dumps(lowered)}
    ).start()
    kube = Kube(k8s, namespace)
    try:
        kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
        kube("apply", "-f", str(EXAMPLE / "evalrun-n1.yaml"))
        run = kube.wait_phase("evalrun", "humanevalv-example-n1", ("Succeeded", "Failed"), timeout=240)
    finally:
        op.stop()
    status = run["status"]
    assert status["phase"] == "Failed", status
    assert "isolation_below_minimum" in status["message"] and "12 item(s)" in status["message"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["EnvironmentReady"]["status"] == "False"
    assert conditions["EnvironmentReady"]["reason"] == "EnvironmentFailure"
    assert conditions["Ready"]["reason"] == "EnvironmentFailure"
    assert "scores" not in status or not status["scores"]
