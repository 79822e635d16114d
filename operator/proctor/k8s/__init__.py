"""Builders of Kubernetes objects (pure functions returning plain dicts, ready to apply)."""

from proctor.k8s.jobs import WorkerContext, build_item_job, build_stage_job
from proctor.k8s.judge import build_deployment, build_service
from proctor.k8s.netpol import build_network_policy

__all__ = [
    "WorkerContext",
    "build_deployment",
    "build_item_job",
    "build_network_policy",
    "build_service",
    "build_stage_job",
]
