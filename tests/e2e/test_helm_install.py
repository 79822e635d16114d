"""`helm install` the chart on the real test control plane, run an example on it, `helm uninstall` it.

The install (tests/e2e/helm_release.py) puts the operator Deployment, its ServiceAccount and RBAC into
the cluster; the test kubelet starts the operator pod, so `proctor operator` runs with the chart's
flags, environment and ServiceAccount token — a permission the chart forgot fails the run. Then
`kubectl apply -f examples/humanevalv/` in the watched namespace must reach Succeeded with the local
scores, and `helm uninstall` must leave nothing behind but the CRDs and the store's data. (The last
test uninstalls: keep it last in this file.)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys

import pytest

from tests.e2e.conftest import wait_for
from tests.integration.test_local_humanevalv import EXPECTED_N1, EXPECTED_N6

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.e2e.helm_release"]
PYTHON = sys.executable
STORE_SECRET = "proctor-helm-store"  # tests/e2e/helm_release.py


def test_the_humanevalv_example_runs_to_succeeded_on_the_helm_installed_operator(helm_runs, s3):
    release = helm_runs.release
    kube = release.kube
    status = kube.get("evalrun", "humanevalv-example")["status"]
    assert status["phase"] == "Succeeded"
    assert status["scores"] == EXPECTED_N6
    assert (status["score"], status["scoreName"], status["progress"]) == (50.0, "pass@1", "72/72")
    assert kube.get("evalrun", "humanevalv-example-n1")["status"]["scores"] == EXPECTED_N1
    # The records went to the store the chart configured.
    summary = status["results"]["summary"]
    assert summary.startswith(f"s3://{s3.bucket}/{release.store_prefix}/"), summary
    assert s3.client().head_object(Bucket=s3.bucket, Key=summary.split("/", 3)[3])

    # The operator is the chart's pod, running as the chart's ServiceAccount.
    [pod] = release.operator_pods()
    assert pod["spec"]["serviceAccountName"] == "proctor"
    assert pod["status"]["phase"] == "Running"
    assert all(c["ready"] for c in pod["status"]["containerStatuses"])
    # Its workers got the chart's settings: the worker command and the store credentials Secret.
    [job] = kube.items("jobs", "proctor.dev/run=humanevalv-example,proctor.dev/component=worker")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [PYTHON, "-m", "proctor_jobs.worker"]
    assert container["envFrom"] == [{"secretRef": {"name": STORE_SECRET}}]
    assert kube.get("networkpolicy", "humanevalv-example-workers"), "the NetworkPolicy toggle defaults to on"


def test_install_notes_say_what_to_apply_next(helm_release):
    notes = helm_release.install_output.split("NOTES:", 1)[1]
    ns = helm_release.watch
    assert f"kubectl -n {ns} apply -f examples/quickstart/evalrun.yaml" in notes
    assert f"kubectl -n {ns} get evalruns -w" in notes
    assert f"the Secret {STORE_SECRET} was created" in notes
    assert "Proctor / Runs" in notes


def test_the_operator_has_the_charts_least_privilege_and_no_more(helm_runs, k8s):
    release = helm_runs.release
    rel, watch = release.namespace, release.watch

    def allowed(*args: str) -> bool:
        sa = f"system:serviceaccount:{rel}:proctor"
        return k8s.kubectl("auth", "can-i", *args, f"--as={sa}", check=False).stdout.strip() == "yes"

    # What it needs, where it needs it.
    assert allowed("create", "jobs.batch", "-n", watch)
    assert allowed("patch", "evalruns.proctor.dev", "--subresource=status", "-n", watch)
    assert allowed("watch", "judgeservers.proctor.dev", "-n", watch)
    assert allowed("get", "secrets", "-n", watch)
    assert allowed("list", "customresourcedefinitions.apiextensions.k8s.io")
    assert allowed("watch", "namespaces")  # kopf matches the watched namespaces' names
    assert allowed("update", "leases.coordination.k8s.io/proctor-operator", "-n", rel)
    # Nothing more: not outside the watched namespace, not destructive, not pods or secret listing.
    assert not allowed("create", "jobs.batch", "-n", "default")
    assert not allowed("get", "secrets", "-n", "default")
    assert not allowed("list", "secrets", "-n", watch)
    assert not allowed("delete", "jobs.batch", "-n", watch)
    assert not allowed("create", "pods", "-n", watch)
    assert not allowed("update", "evalruns.proctor.dev", "-n", watch)
    assert not allowed("update", "leases.coordination.k8s.io/some-other-lease", "-n", rel)
    assert not allowed("delete", "customresourcedefinitions.apiextensions.k8s.io")
    assert not allowed("delete", "namespaces")
    # And it never needed more: the operator was refused nothing while it ran the examples.
    refused = re.compile(r"\b403\b|Forbidden")
    refusals = [line for line in release.operator_log().splitlines() if refused.search(line)]
    assert not refusals, "\n".join(refusals[:20])


def test_the_operator_holds_the_leader_lease_in_the_release_namespace(helm_runs):
    """The chart turns leader election on, so a second replica would wait instead of reconciling."""
    release = helm_runs.release
    lease = release.system.get("lease", "proctor-operator")
    assert lease is not None, (
        "no Lease proctor-operator in the release namespace: the operator did not pick up "
        "--leader-election-namespace / PROCTOR_LEADER_ELECTION_NAMESPACE"
    )
    spec = lease["spec"]
    renewed = dt.datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
    assert (dt.datetime.now(dt.UTC) - renewed).total_seconds() < 3 * spec["leaseDurationSeconds"]


def test_helm_uninstall_leaves_only_the_crds_and_the_stores_data(helm_runs, k8s, s3):
    release = helm_runs.release
    summary = release.kube.get("evalrun", "humanevalv-example")["status"]["results"]["summary"]
    release.uninstall()
    wait_for(lambda: not release.operator_pods(), 60, "the operator pod to go")
    labelled = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/managed-by=Helm"
    kinds = "deployments,serviceaccounts,roles,rolebindings,services,configmaps,secrets"
    left = k8s.kubectl("get", kinds, "-A", "-l", labelled, "-o", "name").stdout.split()
    assert not left, left
    for ns in (release.namespace, release.watch):
        names = json.loads(k8s.kubectl("get", kinds, "-n", ns, "-o", "json").stdout)["items"]
        ours = [
            f"{o['kind']}/{o['metadata']['name']}"
            for o in names
            if o["metadata"]["name"].startswith(("proctor", STORE_SECRET))
            and o["kind"] != "ServiceAccount"  # every namespace's `default` is not ours; names checked
        ]
        assert not ours, (ns, ours)
    cluster = k8s.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").stdout.split()
    assert not [n for n in cluster if n.split("/", 1)[1].startswith(f"{release.name}-proctor")]
    assert not [n for n in cluster if n.split("/", 1)[1] in ("proctor", "proctor-discovery")]
    assert (
        k8s.kubectl("get", "serviceaccount", "proctor", "-n", release.namespace, check=False).returncode != 0
    )
    # What stays: the CRDs (Helm never deletes crds/), the user's runs, and every byte in the store.
    for crd in ("evalruns", "judgeservers", "artifacts"):
        assert k8s.kubectl("get", "crd", f"{crd}.proctor.dev", check=False).returncode == 0
    assert release.kube.get("evalrun", "humanevalv-example")["status"]["phase"] == "Succeeded"
    assert s3.client().head_object(Bucket=s3.bucket, Key=summary.split("/", 3)[3])
