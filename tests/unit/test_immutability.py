"""Once planned, an EvalRun's spec is fixed but for suspend and parallelism: the CEL rules in the
generated CRD (api/immutability.py) and the same decision in Python. The API server applying them is
tests/e2e/test_operator_spec_edits.py."""

from __future__ import annotations

import functools

from proctor.api.crdgen import RESOURCES, crd_for
from proctor.api.immutability import MUTABLE, forbidden_changes


@functools.cache
def evalrun_schema() -> dict:
    crd = crd_for(next(r for r in RESOURCES if r["plural"] == "evalruns"))
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_every_spec_field_but_suspend_and_parallelism_has_a_rule_naming_what_may_change():
    schema = evalrun_schema()
    rules = schema["x-kubernetes-validations"]
    guarded = [r["fieldPath"] for r in rules]
    # Generated from the model: every field of the CRD's spec is guarded, now and after a field is added.
    assert sorted(guarded) == sorted(
        f".spec.{f}" for f in schema["properties"]["spec"]["properties"] if f not in MUTABLE
    )
    assert {"suspend", "parallelism", "judgeAggregate", "humanRatings"} == set(MUTABLE)
    for rule in rules:
        field = rule["fieldPath"].removeprefix(".")
        if field == "spec.additionalJudges":  # append-only: its own rule, tested below
            assert ".all(x, x in self.spec.additionalJudges)" in rule["rule"]
            continue
        assert rule["message"].startswith(f"{field} cannot change once the run is planned")
        assert (
            "only spec.suspend, spec.parallelism, spec.judgeAggregate, spec.humanRatings may, "
            "and judges may be added to spec.additionalJudges" in rule["message"]
        )
        assert rule["reason"] == "FieldValueForbidden"
        # Transition rules: they read the old object, and only bind once it was planned.
        assert rule["rule"].startswith("!(has(oldSelf.status) && has(oldSelf.status.runPrefix)) || ")
        assert f"self.{field} == oldSelf.{field}" in rule["rule"]


def test_an_optional_field_is_compared_only_where_present():
    """Comparing a field absent on one side is a CEL error ("no such key"), which the API server
    reports as a refusal of every update: each optional field is guarded by has() on both sides."""
    rules = {r["fieldPath"]: r["rule"] for r in evalrun_schema()["x-kubernetes-validations"]}
    required = set(evalrun_schema()["properties"]["spec"].get("required") or [])
    assert required == {"benchmark"}
    assert "has(" not in rules[".spec.benchmark"].split("||", 1)[1]
    assert "has(self.spec.answers) == has(oldSelf.spec.answers)" in rules[".spec.answers"]
    assert "(!has(self.spec.answers) || self.spec.answers == oldSelf.spec.answers)" in rules[".spec.answers"]


RUN = {
    "spec": {"benchmark": {"artifactRef": {"name": "b"}}, "parallelism": 4, "suspend": False},
    "status": {"runPrefix": "runs/ns/r/uid"},
}


def test_a_planned_run_refuses_edits_but_suspend_and_parallelism():
    edited = {**RUN, "spec": {**RUN["spec"], "benchmark": {"artifactRef": {"name": "other"}}}}
    assert forbidden_changes(RUN, edited) == [
        "spec.benchmark cannot change once the run is planned (status.runPrefix set); only "
        "spec.suspend, spec.parallelism, spec.judgeAggregate, spec.humanRatings may, and judges may be "
        "added to spec.additionalJudges"
    ]
    added = {**RUN, "spec": {**RUN["spec"], "queueName": "q"}}
    assert [m.split(" ")[0] for m in forbidden_changes(RUN, added)] == ["spec.queueName"]
    allowed = {**RUN, "spec": {**RUN["spec"], "parallelism": 9, "suspend": True}}
    assert forbidden_changes(RUN, allowed) == []


def test_a_run_not_yet_planned_may_change_anything():
    waiting = {**RUN, "status": {"phase": "Pending"}}
    edited = {**waiting, "spec": {**RUN["spec"], "benchmark": {"artifactRef": {"name": "fixed"}}}}
    assert forbidden_changes(waiting, edited) == []
    assert forbidden_changes({"spec": RUN["spec"]}, edited) == []


def test_judges_may_be_added_to_a_planned_run_but_not_changed_or_removed():
    judge = {"name": "second", "url": "http://j/v1", "model": "m"}
    planned = {**RUN, "spec": {**RUN["spec"], "judge": {"url": "http://a/v1"}, "additionalJudges": [judge]}}
    third = {"name": "third", "url": "http://k/v1", "model": "m"}
    added = {**planned, "spec": {**planned["spec"], "additionalJudges": [judge, third]}}
    assert forbidden_changes(planned, added) == []
    changed = {**planned, "spec": {**planned["spec"], "additionalJudges": [{**judge, "model": "other"}]}}
    removed = {**planned, "spec": {**planned["spec"], "additionalJudges": []}}
    for edit in (changed, removed):
        [refusal] = forbidden_changes(planned, edit)
        assert refusal.startswith("spec.additionalJudges: once the run is planned, entries may be added")
