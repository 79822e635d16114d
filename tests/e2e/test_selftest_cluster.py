"""`proctor selftest --cluster`: the hostile suite inside a pod the operator's config shapes, end to end
against the real control plane (on the test kubelet, which runs the pod as a root host process: the
tier is `root`; the same suite in a hardened pod on the real node is tests/integration/test_images.py's)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from proctor_jobs.selftest import load_cases
from proctor_jobs.selftest.cli import default_cases
from tests.e2e.conftest import PYTHON

pytestmark = pytest.mark.e2e


def test_selftest_cluster_runs_every_attack_in_a_worker_pod_and_cleans_up(k8s, namespace):
    env = {
        **os.environ,
        "KUBECONFIG": k8s.kubeconfig,
        "PROCTOR_WORKER_COMMAND": json.dumps([PYTHON, "-m", "proctor_jobs.worker"]),
    }
    proc = subprocess.run(
        [PYTHON, "-m", "proctor", "selftest", "--cluster", "-n", namespace, "--target", "oracle", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    assert f"selftest Job {namespace}/proctor-selftest-" in proc.stderr
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    attacks = {c["name"] for c in load_cases(default_cases(), target="oracle")}
    assert {r["attack"] for r in rows} >= attacks
    assert not [r for r in rows if r["escaped"]]
    assert {r["tier"] for r in rows if r["target"] == "oracle"} == {"root"}
    # nothing left behind: the Job (and so its pod) and the cases' ConfigMap are gone
    left = k8s.kubectl("-n", namespace, "get", "jobs,configmaps", "-o", "name").stdout
    assert "proctor-selftest-" not in left
