"""The CRD's transition rules on the real API server (api/immutability.py), with no operator: a run is
"planned" by writing status.runPrefix by hand. Its spec carries ~1 MB of inline records, so the
rules' runtime cost on a large spec is within the API server's budget, and an edit deep inside a
free-form record is seen. The operator side (a parallelism edit reaching the Job) is
tests/e2e/test_operator_humanevalv.py::test_a_planned_runs_spec_is_fixed_but_suspend_and_parallelism."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = pytest.mark.e2e
FROZEN = (
    "cannot change once the run is planned (status.runPrefix set); "
    "only spec.suspend, spec.parallelism, spec.judgeAggregate, spec.humanRatings may, "
    "and judges may be added to spec.additionalJudges"
)


def big_run(name: str) -> dict:
    records = [{"qid": f"q{i}", "question": f"task {i} " + "x" * 480, "answer": i} for i in range(2000)]
    return {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "metadata": {"name": name},
        "spec": {
            "benchmark": {"format": "humanevalv", "source": {"inline": records}},
            "answers": {"artifactRef": {"name": "answers"}},
            "parallelism": 2,
        },
    }


def test_a_planned_runs_spec_is_fixed_by_the_api_server_even_a_large_one(kube):
    manifest = yaml.safe_dump(big_run("big"))
    assert len(manifest) > 1_000_000
    kube("create", "-f", "-", input=manifest)  # not apply: its annotation would hold the whole spec

    def patch(*args: str, kind: str = "merge"):
        return kube("patch", "evalrun", "big", f"--type={kind}", *args, check=False)

    # Not planned yet: a wrong input can still be fixed.
    assert patch("-p", '{"spec": {"answers": {"artifactRef": {"name": "fixed"}}}}').returncode == 0
    assert patch("--subresource=status", "-p", '{"status": {"runPrefix": "runs/x/big/u"}}').returncode == 0

    deep = [{"op": "replace", "path": "/spec/benchmark/source/inline/1500/answer", "value": -1}]
    out = patch("-p", json.dumps(deep), kind="json")
    assert out.returncode != 0 and f"spec.benchmark {FROZEN}" in out.stderr, out.stderr
    out = patch("-p", '{"spec": {"answers": {"artifactRef": {"name": "other"}}}}')
    assert out.returncode != 0 and f"spec.answers {FROZEN}" in out.stderr
    out = patch("-p", '{"spec": {"queueName": "late"}}')  # an optional field set after planning
    assert out.returncode != 0 and f"spec.queueName {FROZEN}" in out.stderr
    # What may change does, on the same 1 MB object (the rules' cost stays within the budget).
    assert patch("-p", '{"spec": {"parallelism": 7, "suspend": true}}').returncode == 0, "refused"
    spec = kube.get("evalrun", "big")["spec"]
    assert (spec["parallelism"], spec["suspend"], spec["answers"]["artifactRef"]["name"]) == (
        7,
        True,
        "fixed",
    )
    assert spec["benchmark"]["source"]["inline"][1500]["answer"] == 1500
    # The operator's status writes are not edits of the spec.
    assert patch("--subresource=status", "-p", '{"status": {"phase": "Running"}}').returncode == 0
