"""kwok's fake nodes: pods that only pretend, for scale tests (optional part of issue 3)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def test_kwok_fake_nodes_complete_a_large_job_without_the_test_kubelet(k8s: Any, kwok: Any) -> None:
    from tests.cluster.kwok import FAKE_POD_SCHEDULING

    nodes = kwok.add_nodes(2)
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    k8s.create_namespace(namespace)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "wide", "namespace": namespace},
        "spec": {
            "completions": 40,
            "parallelism": 40,
            "completionMode": "Indexed",
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    **FAKE_POD_SCHEDULING,
                    "containers": [{"name": "c", "image": "fake"}],
                }
            },
        },
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(job))
    deadline = time.monotonic() + 90
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = json.loads(k8s.kubectl("-n", namespace, "get", "job/wide", "-o", "json").stdout).get(
            "status", {}
        )
        if status.get("succeeded") == 40:
            break
        time.sleep(0.5)
    assert status.get("succeeded") == 40, status
    assert status["completedIndexes"] == "0-39"
    # Nothing of it ran on the test kubelet.
    assert not k8s.kubelet.pod_dir(namespace, "x").parent.exists()
    assert set(nodes) <= {
        n["metadata"]["name"] for n in json.loads(k8s.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    }
