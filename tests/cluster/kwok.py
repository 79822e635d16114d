"""kwok (built from its Go module) for scale tests: fake nodes whose pods only pretend to run.

The test kubelet runs real processes, which is what correctness tests need and what a 2-core machine
cannot do for thousands of pods. kwok fills that gap: it manages Nodes annotated
`kwok.x-k8s.io/node: fake` with its default stages (pods become Running at once; pods owned by a Job
complete). The fake nodes carry the NoSchedule taint `kwok.x-k8s.io/node=fake`, so only pods that
tolerate it (use `FAKE_POD_SCHEDULING`) land there and no ordinary test pod is silently faked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import binaries
from .controlplane import ControlPlane
from .procs import Server, wait_until

ANNOTATION = "kwok.x-k8s.io/node"
TAINT = {"key": ANNOTATION, "value": "fake", "effect": "NoSchedule"}
LABEL = "proctor.dev/fake-node"
#: Merge into a pod spec to send it to kwok's fake nodes.
FAKE_POD_SCHEDULING: dict[str, Any] = {
    "nodeSelector": {LABEL: "true"},
    "tolerations": [{"key": ANNOTATION, "operator": "Exists", "effect": "NoSchedule"}],
}


class Kwok:
    """A running kwok controller for one control plane."""

    def __init__(self, plane: ControlPlane, server: Server) -> None:
        self.plane = plane
        self.server = server
        self.nodes: list[str] = []

    def add_nodes(
        self,
        count: int,
        prefix: str = "kwok-node",
        cpu: str = "32",
        memory: str = "256Gi",
        pods: str = "1000",
        timeout: float = 30,
    ) -> list[str]:
        """Create `count` fake nodes and wait until kwok reports them Ready."""
        names = [f"{prefix}-{len(self.nodes) + i}" for i in range(count)]
        capacity = {"cpu": cpu, "memory": memory, "pods": pods}
        items = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {ANNOTATION: "fake"},
                    "labels": {LABEL: "true", "kubernetes.io/hostname": name, "type": "kwok"},
                },
                "spec": {"taints": [TAINT]},
                "status": {"capacity": capacity, "allocatable": capacity},
            }
            for name in names
        ]
        self.plane.kubectl(
            "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        )

        def ready() -> bool:
            for name in names:
                _, node = self.plane.request("GET", f"/api/v1/nodes/{name}")
                conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
                if conditions.get("Ready") != "True":
                    return False
            return True

        wait_until("kwok fake nodes Ready", ready, timeout, [self.server])
        self.nodes += names
        return names

    def stop(self) -> None:
        self.server.stop()


def start(plane: ControlPlane, workdir: Path, die_with_parent: bool = True) -> Kwok:
    """Start kwok managing only annotated nodes (never the test kubelet's)."""
    binary = binaries.go_binary("kwok")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "kwok.yaml"
    config.write_text("")  # no stages configured: kwok's built-in defaults
    server = Server(
        "kwok",
        [
            str(binary),
            f"--kubeconfig={plane.kubeconfig}",
            f"--config={config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={ANNOTATION}=fake",
            "--server-address=127.0.0.1:0",
            "--node-ip=127.0.0.1",
            # Pod IPs outside the Service range (10.0.0.0/24).
            "--cidr=10.244.0.1/16",
        ],
        workdir / "kwok.log",
        die_with_parent=die_with_parent,
    )
    return Kwok(plane, server)
