"""kopf indexes: what the cluster holds, kept current by kopf's watches, read by the daemons.

Jobs, Deployments, Services and NetworkPolicies are watched with a server-side label selector
(`app.kubernetes.io/managed-by=proctor`, set in startup.py through `settings.watching.label_selectors`),
so only Proctor's children cross the wire; the `labels=` filter here repeats it for clarity (kopf
evaluates `labels=` client-side). Children other than Jobs are indexed by their owner's uid, so a
daemon sees whether its children exist and are current without a request.
"""

from __future__ import annotations

from typing import Any

import kopf

from proctor.api.common import GROUP, VERSION
from proctor.k8s.judge import CALIBRATION
from proctor.k8s.names import COMPONENT_LABEL, MANAGED_BY, RUN_UID_LABEL
from proctor.reconcile.children import observed_by_kind

MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY["app.kubernetes.io/managed-by"]}


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
async def jobs_by_run(namespace: str, labels, body, **_: Any):
    """(namespace, run uid) -> the run's Jobs."""
    uid = labels.get(RUN_UID_LABEL)
    return {(namespace, uid): dict(body)} if uid else None


@kopf.index("batch", "v1", "jobs", labels={**MANAGED, COMPONENT_LABEL: CALIBRATION})
async def calibration_jobs_by_owner(namespace: str, body, **_: Any):
    """(namespace, JudgeServer uid) -> its calibration Jobs."""
    return _by_owner(namespace, body)


def owner_uid(body) -> str | None:
    """The uid of the object that controls `body` (its controller owner reference)."""
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("uid")
    return None


def _by_owner(namespace: str, body) -> dict | None:
    uid = owner_uid(body)
    return {(namespace, uid): dict(body)} if uid else None


@kopf.index("apps", "v1", "deployments", labels=MANAGED)
async def deployments_by_owner(namespace: str, body, **_: Any):
    return _by_owner(namespace, body)


@kopf.index("v1", "services", labels=MANAGED)
async def services_by_owner(namespace: str, body, **_: Any):
    return _by_owner(namespace, body)


@kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=MANAGED)
async def networkpolicies_by_owner(namespace: str, body, **_: Any):
    return _by_owner(namespace, body)


@kopf.index(GROUP, VERSION, "evalruns")
async def evalruns_by_namespace(namespace: str, body, **_: Any):
    return {namespace: dict(body)}


@kopf.index(GROUP, VERSION, "artifacts")
async def artifacts_by_namespace(namespace: str, body, **_: Any):
    return {namespace: dict(body)}


@kopf.index(GROUP, VERSION, "judgeservers")
async def judgeservers_by_namespace(namespace: str, body, **_: Any):
    return {namespace: dict(body)}


def by_name(index, namespace: str) -> dict[str, dict[str, Any]]:
    """One namespace's objects from an index keyed by namespace, by name."""
    return {obj["metadata"]["name"]: obj for obj in index.get(namespace, ())}


def jobs_in(index, namespace: str) -> list[dict[str, Any]]:
    """Every Job of every run in `namespace` (the judge grants other runs hold)."""
    return [job for key in list(index) if key[0] == namespace for job in index.get(key, ())]


def jobs_of(index, namespace: str, uid: str) -> dict[str, dict[str, Any]]:
    return {job["metadata"]["name"]: job for job in index.get((namespace, uid), ())}


def children_of(namespace: str, uid: str, **indexes) -> dict[tuple[str, str], dict[str, Any]]:
    """`children_of(ns, uid, Deployment=index, ...)`: one owner's children by (kind, name)."""
    return observed_by_kind(**{kind: index.get((namespace, uid), ()) for kind, index in indexes.items()})
