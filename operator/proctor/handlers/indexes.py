"""kopf indexes: what the cluster holds, kept current by kopf's watches, read by the daemons.

Jobs are watched with a server-side label selector (`app.kubernetes.io/managed-by=proctor`, set in
startup.py through `settings.watching.label_selectors`), so only Proctor's Jobs cross the wire; the
`labels=` filter here repeats it for clarity (kopf evaluates `labels=` client-side).
"""

from __future__ import annotations

from typing import Any

import kopf

from proctor.api.common import GROUP, VERSION
from proctor.k8s.names import MANAGED_BY, RUN_UID_LABEL

MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY["app.kubernetes.io/managed-by"]}


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
async def jobs_by_run(namespace: str, labels, body, **_: Any):
    """(namespace, run uid) -> the run's Jobs."""
    uid = labels.get(RUN_UID_LABEL)
    return {(namespace, uid): dict(body)} if uid else None


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


def jobs_of(index, namespace: str, uid: str) -> dict[str, dict[str, Any]]:
    return {job["metadata"]["name"]: job for job in index.get((namespace, uid), ())}
