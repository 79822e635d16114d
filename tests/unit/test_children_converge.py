"""Children converge (issue 13 point 4): which children a pass re-applies, and what the vLLM judge's and
the ingest pods' NetworkPolicies let through. Pure functions; the e2e side (a Service deleted by hand
comes back, a removed field leaves the Deployment) is tests/e2e/test_operator_judges.py."""

from __future__ import annotations

import copy
import ipaddress

from proctor.k8s.judge import build_deployment, judge_children, judge_selector
from proctor.k8s.names import SPEC_HASH_ANNOTATION, label_value
from proctor.k8s.netpol import INGEST_BLOCKED_CIDRS, build_ingest_network_policy
from proctor.reconcile.children import observed_by_kind, stale_children

VLLM = {"vllm": {"model": "org/model", "nodeSelector": {"gpu": "h100"}, "port": 8000}}


def as_observed(objs):
    by_kind: dict[str, list] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], []).append(copy.deepcopy(obj))
    return observed_by_kind(**by_kind)


def test_nothing_is_written_when_every_child_is_current():
    desired = judge_children("team", "qwen", "uid", VLLM)
    assert [c["kind"] for c in desired] == ["NetworkPolicy", "Service", "Deployment"]  # policy first
    assert stale_children(desired, as_observed(desired)) == []


def test_a_child_deleted_by_hand_is_applied_again():
    desired = judge_children("team", "qwen", "uid", VLLM)
    observed = as_observed(c for c in desired if c["kind"] != "Service")
    assert [c["kind"] for c in stale_children(desired, observed)] == ["Service"]


def test_a_spec_edit_re_applies_the_deployment_only():
    before = judge_children("team", "qwen", "uid", VLLM)
    edited = {"vllm": {k: v for k, v in VLLM["vllm"].items() if k != "nodeSelector"}}
    after = judge_children("team", "qwen", "uid", edited)
    stale = stale_children(after, as_observed(before))
    assert [c["kind"] for c in stale] == ["Deployment"]
    # what is applied no longer names the field: server-side apply then removes it from the object
    assert "nodeSelector" not in stale[0]["spec"]["template"]["spec"]


def test_the_hash_covers_the_whole_object_not_only_the_spec():
    """A new operator version that builds the Deployment differently re-applies it (the old hash was of
    spec.vllm only, so a changed probe or label never reached existing judges)."""
    a = build_deployment("team", "qwen", "uid", VLLM)
    b = copy.deepcopy(a)
    b["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSeconds"] = 99
    del b["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    from proctor.k8s.names import with_spec_hash

    assert (
        with_spec_hash(b)["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        != (a["metadata"]["annotations"][SPEC_HASH_ANNOTATION])
    )
    assert stale_children([with_spec_hash(b)], as_observed([a]))


def test_a_long_judge_name_still_gives_valid_labels():
    name = "a-judge-server-whose-name-is-much-longer-than-sixty-three-characters-allowed.v2"
    selector = judge_selector(name)
    assert all(len(v) <= 63 and not v.endswith("-") for v in selector.values())
    assert selector["proctor.dev/judgeserver"] == label_value(name)
    for child in judge_children("team", name, "uid", VLLM):
        assert all(len(v) <= 63 for v in child["metadata"]["labels"].values()), child["kind"]


def test_only_workers_and_the_operator_may_call_a_vllm_judge():
    [policy] = [c for c in judge_children("team", "qwen", "uid", VLLM) if c["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == judge_selector("qwen")
    [rule] = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    peers = rule["from"]
    assert {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/managed-by": "proctor",
                "app.kubernetes.io/part-of": "proctor",
                "proctor.dev/component": "worker",
            }
        }
    } in peers
    # no peer without a pod selector: "any pod of any namespace" would make the policy pointless
    assert all("podSelector" in peer and peer["podSelector"].get("matchLabels") for peer in peers)


def test_an_ingest_pod_reaches_no_cluster_or_metadata_address():
    owner = {"apiVersion": "proctor.dev/v1alpha1", "kind": "Artifact", "name": "big", "uid": "u1"}
    policy = build_ingest_network_policy("team", owner, ["10.96.0.20/32"])
    spec = policy["spec"]
    assert spec["ingress"] == [] and spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"] == {
        "proctor.dev/component": "ingest",
        "proctor.dev/artifact": "big",
    }
    blocks = [t["ipBlock"] for rule in spec["egress"] for t in rule.get("to", []) if "ipBlock" in t]
    public = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
    assert public and set(public[0]["except"]) == set(INGEST_BLOCKED_CIDRS)

    def allowed(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        for block in blocks:
            if ip in ipaddress.ip_network(block["cidr"]) and not any(
                ip in ipaddress.ip_network(e) for e in block.get("except", ())
            ):
                return True
        return False

    assert not allowed("169.254.169.254")  # the cloud metadata service
    assert not allowed("10.96.0.1")  # a typical API server Service address
    assert not allowed("127.0.0.1")
    assert allowed("10.96.0.20")  # the in-cluster store the operator was told about
    assert allowed("93.184.216.34")  # a public download


def test_a_failed_run_stops_only_the_jobs_still_holding_pods():
    from proctor.reconcile.evalrun import jobs_to_stop

    states = {
        "r-render": ("Failed", "MaxFailedIndexesExceeded"),
        "r-judge": ("Running", ""),
        "r-other": ("Complete", ""),
        "r-held": ("Suspended", ""),
    }
    assert jobs_to_stop(states) == ["r-judge"]


def test_only_the_operators_own_results_artifact_is_read_with_its_credentials():
    """A label, or an owner reference a tenant wrote, does not make an Artifact a run's results: the
    reference must name a planned run with that uid (tenants cannot write a run's status)."""
    from proctor.reconcile.artifact import results_owner

    run = {"metadata": {"name": "r", "uid": "u-1"}, "status": {"runPrefix": "runs/ns/r/u-1"}}
    ref = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "name": "r",
        "uid": "u-1",
        "controller": True,
    }

    def artifact(refs, type_="results"):
        return {
            "metadata": {"name": "a", "labels": {"proctor.dev/run": "r"}, "ownerReferences": refs},
            "spec": {"type": type_, "source": {"s3": {"uri": "s3://b/other-tenant/records.jsonl"}}},
        }

    assert results_owner(artifact([ref]), {"r": run}) is run
    assert results_owner(artifact([]), {"r": run}) is None  # the label alone
    assert results_owner(artifact([{**ref, "uid": "guessed"}]), {"r": run}) is None
    assert results_owner(artifact([ref]), {}) is None  # no such run
    assert results_owner(artifact([ref], "answers"), {"r": run}) is None
    unplanned = {"metadata": run["metadata"], "status": {}}
    assert results_owner(artifact([ref]), {"r": unplanned}) is None
