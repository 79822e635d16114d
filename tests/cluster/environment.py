"""Starting and stopping the parts of the test environment, shared by the pytest fixtures and the
developer command so both run exactly the same thing.

Each part is started on its own (a test that needs only S3 does not wait for Kubernetes), under one
working directory that holds every server's log and state:

    <workdir>/k8s/         control plane: pki/, etcd-data/, *.log, admin.kubeconfig, operator.kubeconfig
    <workdir>/k8s/pods/    the test kubelet's pod directories; <workdir>/k8s/kubelet.log
    <workdir>/s3/          MinIO's data and log
    <workdir>/prometheus/  Prometheus's config, data and log
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

from . import controlplane, kubelet, procs
from . import prometheus as prom
from . import s3 as s3mod
from .controlplane import ControlPlane
from .kubelet import KubeletHandle


def start_k8s(workdir: Path, die_with_parent: bool = True, timeout: float = 60) -> ControlPlane:
    """Control plane plus one test-kubelet node; returns when pods can be created and run.

    Ready means: the API answers /readyz, the node is registered and watched, and the
    controller-manager has created the `default` ServiceAccount (pods are refused without it).
    """
    plane = controlplane.start(workdir, die_with_parent=die_with_parent, timeout=timeout)
    try:
        handle = kubelet.start(
            workdir / "pods",
            plane.server,
            plane.admin_token,
            plane.ca_file,
            die_with_parent=die_with_parent,
        )
        plane.kubelet = handle
        assert handle.server is not None
        plane.servers.append(handle.server)
        controlplane.wait_for_controllers(plane, timeout=timeout)
        kubelet.wait_ready(handle, timeout=timeout)
        state = json.loads((workdir / "controlplane.json").read_text())
        state["pids"] = plane.pids()
        state["kubelet_root"] = str(handle.root)
        (workdir / "controlplane.json").write_text(json.dumps(state, indent=2))
        return plane
    except BaseException:
        plane.stop()
        raise


def stop_k8s(plane: ControlPlane) -> list[int]:
    """Stop the kubelet (which stops its pods) and the control plane; return every pid they had."""
    pids = list(plane.pids().values())
    if plane.kubelet is not None:
        pids += plane.kubelet.all_pids()
    plane.stop()
    return pids


def load_k8s(workdir: Path) -> ControlPlane:
    """Describe a control plane started by `python -m tests.cluster up`."""
    plane = controlplane.load(workdir)
    state = json.loads((workdir / "controlplane.json").read_text())
    plane.kubelet = KubeletHandle(Path(state.get("kubelet_root", workdir / "pods")))
    return plane


def leftover(pids: list[int]) -> list[int]:
    """The pids (each also a process-group id) that still have a live process."""
    return [pid for pid in pids if procs.pid_alive(pid) or procs.pgid_alive(pid)]


def reap(pids: list[int], timeout: float = 5.0) -> list[int]:
    """Wait for `pids` to vanish; SIGKILL stragglers; return those that had to be killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and leftover(pids):
        time.sleep(0.05)
    stragglers = leftover(pids)
    for pid in stragglers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return stragglers


__all__ = [
    "ControlPlane",
    "leftover",
    "load_k8s",
    "prom",
    "reap",
    "s3mod",
    "start_k8s",
    "stop_k8s",
]
