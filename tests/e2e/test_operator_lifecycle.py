"""Run lifecycles on the real control plane: no ghost after a deletion the operator did not see, and a
run's data deleted with it when it asked for that — even when it was deleted while the operator was
down. (kopf runs one daemon per active run and holds its finalizer while it does; runs that delete their
data keep Proctor's finalizer until they have.)"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "humanevalv"
FINALIZER = "proctor.dev/finalizer"


def small_run(name: str, **storage) -> dict:
    """HumanEval-V on the 12 example tasks, one sample each, two shards."""
    return {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "metadata": {"name": name},
        "spec": {
            "benchmark": {"artifactRef": {"name": "humanevalv-example-tasks"}},
            "answers": {"artifactRef": {"name": "humanevalv-example-answers-n1"}},
            "sharding": {"shardSize": 6},
            "parallelism": 2,
            **({"storage": storage} if storage else {}),
        },
    }


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when there are none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def store_keys(s3, prefix: str) -> list[str]:
    out = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=prefix)
    return [o["Key"] for o in out.get("Contents", [])]


def test_a_run_deleted_while_the_operator_is_down_is_never_reconciled_again(kube, operator):
    """The ghost: a run deleted where the operator's watch could not see it (here: while it was down;
    a watch re-list after 410 Gone is the same gap) must not be reconciled forever. kopf's finalizer
    keeps the deleted run visible, marked for deletion, until the operator is back; kopf then stops
    nothing (no daemon is started for a run being deleted), removes its finalizer, and the run goes.
    No status patch hits the missing object, no error loop in the log."""
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(small_run("ghost"))
    wait_for(lambda: kube.items("jobs", "proctor.dev/run=ghost"), 90, "the run's Job")
    assert FINALIZER in kube.get("evalrun", "ghost")["metadata"].get("finalizers", [])
    operator.kill()
    kube("delete", "evalrun", "ghost", "--wait=false")
    held = kube.get("evalrun", "ghost")
    assert held and held["metadata"].get("deletionTimestamp"), "the finalizer holds the deleted run"

    restarted_at = len(operator.log())
    operator.start()
    wait_for(
        lambda: kube.get("evalrun", "ghost") is None, 60, "the deleted run to go once the operator is back"
    )
    before = operator.metrics()
    time.sleep(6)  # several resync intervals (1 s in these tests)
    after = operator.metrics()
    # Nothing more is done about it: no status patch, no failed pass, no error in the log.
    patches = ("proctor_api_requests_total", {"verb": "patch", "resource": "evalruns/status"})
    assert metric(after, patches[0], **patches[1]) == metric(before, patches[0], **patches[1])
    assert metric(after, "proctor_reconcile_errors_total", kind="EvalRun") == 0
    assert metric(after, "proctor_run_phase", run="ghost") == 0
    log = operator.log()[restarted_at:]
    assert not [
        line for line in log.splitlines() if "ghost" in line and re.search(r"failed|404|Not Found", line)
    ]


def test_a_run_deleted_while_running_stops_being_reconciled_at_once(kube, operator):
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(small_run("short"))
    wait_for(lambda: kube.items("jobs", "proctor.dev/run=short"), 90, "the run's Job")
    kube("delete", "evalrun", "short", "--wait=false")
    wait_for(lambda: kube.get("evalrun", "short") is None, 30, "the run to go (its daemon stopped)")
    time.sleep(4)
    assert metric(operator.metrics(), "proctor_reconcile_errors_total", kind="EvalRun") == 0
    assert not re.search(r"reconciling EvalRun \S+/short failed", operator.log())


def test_data_deleted_with_the_run_even_when_deleted_while_the_operator_is_down(kube, operator, s3):
    """`deleteDataWithRun` (and its deprecated alias `deleteOnFinish`): the run keeps Proctor's finalizer
    after it finished, so a deletion while the operator is down waits for it; once back, the operator
    deletes the data and lets the run go. A run that did not ask keeps its data and carries no
    finalizer once finished."""
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(small_run("wipe", deleteDataWithRun=True))
    kube.apply(small_run("wipe-old", deleteOnFinish=True))
    kube.apply(small_run("keep"))
    prefixes = {}
    for name in ("wipe", "wipe-old", "keep"):
        run = kube.wait_phase("evalrun", name, ("Succeeded", "Failed"), timeout=300)
        assert run["status"]["phase"] == "Succeeded", run["status"]
        prefixes[name] = f"e2e-{kube.namespace}/{run['status']['runPrefix']}/"
        assert store_keys(s3, prefixes[name]), f"{name} wrote no data?"

    def finalizers(name: str) -> list[str]:
        return (kube.get("evalrun", name) or {}).get("metadata", {}).get("finalizers") or []

    # A finished run is no longer worked on: kopf's finalizer went with its daemon, except where the
    # data must be deleted with the run.
    wait_for(lambda: finalizers("keep") == [], 30, "the finished run's finalizer to go")
    assert finalizers("wipe") == [FINALIZER] and finalizers("wipe-old") == [FINALIZER]

    operator.kill()
    for name in ("wipe", "wipe-old", "keep"):
        kube("delete", "evalrun", name, "--wait=false")
    assert kube.get("evalrun", "keep") is None  # nothing to hold it
    assert kube.get("evalrun", "wipe")["metadata"].get("deletionTimestamp")
    time.sleep(2)
    assert store_keys(s3, prefixes["wipe"]), "nobody deletes the data while the operator is down"

    operator.start()
    for name in ("wipe", "wipe-old"):
        wait_for(lambda n=name: kube.get("evalrun", n) is None, 60, f"{name} to go once its data is deleted")
        assert store_keys(s3, prefixes[name]) == [], f"{name}'s data is still in the store"
    assert store_keys(s3, prefixes["keep"]), "a run that did not ask keeps its data"


def test_a_failed_run_stops_its_other_jobs_and_writes_its_report(
    k8s, s3, namespace, tmp_path, judge_double_process
):
    """Every render pod fails (a worker command that refuses the render stage); the judge stage's pods
    wait for render shards that will never come. The run ends Failed / JobFailed, its judge Job is
    suspended (no pod goes on waiting and holding its requests), and summary.json and report.md are
    written with the reason, as `proctor run` writes them for a failed local run."""
    import json

    from tests.e2e.conftest import PYTHON, Kube, OperatorProcess
    from tests.e2e.helm_release import judged_run
    from tests.e2e.test_operator_judges import external_judge

    refuse_render = [
        "sh",
        "-c",
        'case " $* " in *" render "*) echo "render refused" >&2; exit 3;; esac; '
        'exec "$0" -m proctor_jobs.worker "$@"',
        PYTHON,
    ]
    op = OperatorProcess(
        k8s, s3, namespace, tmp_path, extra_env={"PROCTOR_WORKER_COMMAND": json.dumps(refuse_render)}
    ).start()
    kube = Kube(k8s, namespace)
    try:
        judge = judge_double_process()
        kube.apply(external_judge("fail-judge", judge.url))
        run = judged_run()
        run["metadata"]["name"] = "fails-in-render"
        run["spec"]["judge"]["serverRef"]["name"] = "fail-judge"
        run["spec"]["retries"] = {"backoffLimitPerIndex": 0, "maxFailedIndexes": 0}
        kube.apply(run)
        final = kube.wait_phase("evalrun", "fails-in-render", ("Succeeded", "Failed"), timeout=180)
        status = final["status"]
        assert status["phase"] == "Failed", status
        ready = {c["type"]: c for c in status["conditions"]}["Ready"]
        assert ready["reason"] == "JobFailed" and "fails-in-render-render" in status["message"]

        judge_job = kube.get("job", "fails-in-render-judge")
        assert judge_job["spec"]["suspend"] is True
        wait_for(
            lambda: (
                not [
                    p
                    for p in kube.items("pods", "proctor.dev/run=fails-in-render,proctor.dev/stage=judge")
                    if (p.get("status") or {}).get("phase") in ("Pending", "Running")
                ]
            ),
            60,
            "the judge stage's pods to end",
        )
        summary_key = status["results"]["summary"].split("/", 3)[3]
        body = s3.client().get_object(Bucket=s3.bucket, Key=summary_key)["Body"].read()
        summary = json.loads(body)
        assert summary["phase"] == "Failed"
        assert summary["run"]["reason"] == "JobFailed" and "render" in summary["run"]["message"]
        report_key = status["results"]["report"].split("/", 3)[3]
        report = s3.client().get_object(Bucket=s3.bucket, Key=report_key)["Body"].read().decode()
        assert "**Failed** — JobFailed" in report
        assert not kube.get("artifact", "fails-in-render-results")  # partial results make no Artifact
    finally:
        op.stop()


def test_a_run_asking_for_more_than_tenancy_allows_waits_with_the_field_named(kube, operator):
    """Privileged pods are off by default (the chart's `tenancy.allowPrivileged`), and a run cannot set
    Proctor's own switches on its pods: such a run starts no Job and says which field is refused."""
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    run = small_run("asks-too-much")
    run["spec"]["oracle"] = {"privileged": True}
    run["spec"]["env"] = {"PROCTOR_SANDBOX_TIER": "none"}
    kube.apply(run)

    def refused():
        status = (kube.get("evalrun", "asks-too-much") or {}).get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        inputs = conditions.get("InputsReady") or {}
        return status if inputs.get("reason") == "NotAllowed" else None

    status = wait_for(refused, 60, "reason NotAllowed")
    assert status["phase"] == "Pending"
    assert "spec.oracle.privileged" in status["message"]
    assert "spec.env.PROCTOR_SANDBOX_TIER" in status["message"]
    time.sleep(2)
    assert not kube.items("jobs", "proctor.dev/run=asks-too-much")
