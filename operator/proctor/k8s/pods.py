"""The one pod shape every Job Proctor creates runs in: workers, aggregation, ingest and calibration.

Whatever a pod runs — answers' code, a tenant's URL being fetched, a judge being asked — it runs
non-root with a read-only root filesystem and a scratch `emptyDir` for home and temp, no
service-account token (no Proctor pod talks to the Kubernetes API), no service links, all
capabilities dropped, the configured seccomp profile and runtime class (e.g. gVisor), on the nodes the
admin chose. Building them in one place keeps a new kind of pod from being hardened by hand, and less.
"""

from __future__ import annotations

from typing import Any

from proctor.config import OperatorConfig

SCRATCH = "/scratch"

#: every Proctor pod's own environment: its scratch emptyDir is home and temp (the root is read-only)
SCRATCH_ENV = (
    {"name": "TMPDIR", "value": SCRATCH},
    {"name": "HOME", "value": SCRATCH},
    {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
)


def _security(config: OperatorConfig, privileged: bool = False) -> tuple[dict, dict]:
    """The pod's and the container's securityContext of every pod Proctor runs Proctor's or answers'
    code in."""
    if privileged:
        # Opt-in only (spec.oracle.privileged): some research artifacts run Docker or kind.
        return {"seccompProfile": {"type": "RuntimeDefault"}}, {"privileged": True}
    pod = {
        "runAsNonRoot": True,
        "runAsUser": config.run_as_user,
        "runAsGroup": config.run_as_user,
        "fsGroup": config.run_as_user,
        "seccompProfile": dict(config.worker_seccomp_profile),
    }
    container = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    return pod, container


def hardened_pod(
    config: OperatorConfig,
    container: dict[str, Any],
    *,
    privileged: bool = False,
    runtime_class: str | None = None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The pod spec around `container` (name, image, command, args, resources; its own env, mounts and
    envFrom are kept after the scratch ones). `runtime_class` overrides the admin's default; node
    selector and tolerations are added to the admin's."""
    pod_security, container_security = _security(config, privileged)
    full = {
        "imagePullPolicy": config.image_pull_policy,
        **container,
        "env": [*map(dict, SCRATCH_ENV), *(container.get("env") or [])],
        "securityContext": container_security,
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}, *(container.get("volumeMounts") or [])],
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security,
        "containers": [full],
        "volumes": [{"name": "scratch", "emptyDir": {}}, *(volumes or [])],
    }
    runtime_class = runtime_class or config.runtime_class_name
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    selector = {**config.node_selector, **(node_selector or {})}
    if selector:
        spec["nodeSelector"] = selector
    all_tolerations = [*config.tolerations, *(tolerations or [])]
    if all_tolerations:
        spec["tolerations"] = all_tolerations
    return spec
