"""The ArtEvalBench example on the real control plane (one Job per artifact): the same scores as locally.

ArtifactsBench's example runs end to end on the real node, in the worker image
(tests/e2e/test_realnode_e2e.py); it ran here too on the test kubelet until that stronger test existed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
ARTEVAL = REPO / "examples" / "artevalbench"


def local_scores(manifest: Path, store: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "proctor",
            "run",
            str(manifest),
            "--store",
            str(store),
            "--json",
            "-q",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])["scores"]


def test_artevalbench_example_runs_one_job_per_artifact_with_the_local_scores(kube, operator, tmp_path):
    expected = local_scores(ARTEVAL / "evalrun.yaml", tmp_path / "local")
    kube("apply", "-f", str(ARTEVAL / "inputs.yaml"))
    kube("apply", "-f", str(ARTEVAL / "evalrun.yaml"))
    final = kube.wait_phase("evalrun", "artevalbench-example", ("Succeeded", "Failed"), timeout=600)
    assert final["status"]["phase"] == "Succeeded", final["status"].get("message")
    assert final["status"]["scores"] == pytest.approx(expected)
    assert final["status"]["scores"]["artifact/tinysort"] == 4.0
    jobs = kube.items("jobs", "proctor.dev/run=artevalbench-example,proctor.dev/component=worker")
    assert len(jobs) == 2  # one Job per artifact, not an Indexed Job
    for job in jobs:
        assert "completionMode" not in job["spec"] or job["spec"]["completionMode"] == "NonIndexed"
        assert job["spec"]["activeDeadlineSeconds"] > 0
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["PROCTOR_WORKSPACE"] == "/workspace"
