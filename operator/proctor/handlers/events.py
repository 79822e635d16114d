"""kopf event handlers: wake the daemon an event concerns, and keep the metrics of finished runs.

kopf indexes an event before it calls these, so the daemon they wake sees the change. They write
nothing to the cluster.
"""

from __future__ import annotations

from typing import Any

import kopf

from proctor.api.common import GROUP, VERSION
from proctor.handlers.indexes import MANAGED
from proctor.k8s.judge import CALIBRATION
from proctor.k8s.names import COMPONENT_LABEL, RUN_UID_LABEL

ARTIFACT_LABEL = "proctor.dev/artifact"


def _marker(meta) -> tuple:
    return (meta.get("generation"), bool(meta.get("deletionTimestamp")))


@kopf.on.event(GROUP, VERSION, "evalruns")
async def evalrun_event(type: str, body, meta, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    from proctor.controllers import evalrun

    key = ("EvalRun", namespace, meta["uid"])
    if type == "DELETED":
        memo.services.state.forget_run(meta["uid"])
        memo.wakers.forget(key)
        return
    if memo.wakers.changed(key, _marker(meta)):  # a spec edit, suspend, a deletion: not our own status
        memo.wakers.wake(key)
    evalrun.publish_finished(memo.services, dict(body))


@kopf.on.event(GROUP, VERSION, "judgeservers")
async def judgeserver_event(type: str, meta, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    key = ("JudgeServer", namespace, meta["name"])
    if type == "DELETED":
        memo.services.state.judges.pop((namespace, meta["name"]), None)
        memo.wakers.forget(key)
        return
    if memo.wakers.changed(key, _marker(meta)):
        memo.wakers.wake(key)
    memo.wakers.wake_waiting_runs(namespace)


@kopf.on.event(GROUP, VERSION, "artifacts")
async def artifact_event(type: str, meta, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    key = ("Artifact", namespace, meta["name"])
    if type == "DELETED":
        memo.wakers.forget(key)
    elif memo.wakers.changed(key, _marker(meta)):
        memo.wakers.wake(key)
    memo.wakers.wake_waiting_runs(namespace)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(labels, body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    if labels.get(COMPONENT_LABEL) == CALIBRATION:  # a JudgeServer's calibration Job
        _wake_owner(body, namespace, memo)
    if labels.get(RUN_UID_LABEL):
        memo.wakers.wake(("EvalRun", namespace, labels[RUN_UID_LABEL]))
    if labels.get(ARTIFACT_LABEL):
        memo.wakers.wake(("Artifact", namespace, labels[ARTIFACT_LABEL]))


def _wake_owner(body, namespace: str, memo: kopf.Memo) -> None:
    """A child changed (applied, deleted by hand, its pods' readiness): its owner's daemon converges."""
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if not ref.get("controller"):
            continue
        if ref.get("kind") == "JudgeServer":
            memo.wakers.wake(("JudgeServer", namespace, ref.get("name")))
        elif ref.get("kind") == "EvalRun":
            memo.wakers.wake(("EvalRun", namespace, ref.get("uid")))


# One handler for the three kinds: kopf registers it once per decorator (per resource).
@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
@kopf.on.event("v1", "services", labels=MANAGED)
@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=MANAGED)
async def child_event(body, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    _wake_owner(body, namespace, memo)
