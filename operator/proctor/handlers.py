"""kopf wiring, and nothing else: every handler hands over to a controller in `proctor.controllers`.

Reconciliation is level-based: timers re-run each controller from observed state, so a missed event
or a restart changes nothing. Observed children come from kopf indexes (one watch per kind, no
per-pass API reads). kopf's own bookkeeping lives in `status.kopf` (not in annotations that can
overflow), and kopf posts only warnings as Events; phase changes are posted by the controllers.

    kopf run -m proctor.handlers          # or: proctor operator
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from proctor.api.common import GROUP, VERSION
from proctor.controllers import artifact, evalrun, judgeserver

RESYNC_S = float(os.environ.get("PROCTOR_RESYNC_SECONDS", "3"))
JUDGE_RESYNC_S = float(os.environ.get("PROCTOR_JUDGE_RESYNC_SECONDS", "5"))
MANAGED = {"app.kubernetes.io/managed-by": "proctor"}
log = logging.getLogger("proctor.handlers")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    from proctor.controllers.bootstrap import runtime_from_env

    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.networking.request_timeout = 60
    if getattr(memo, "runtime", None) is None:
        memo.runtime = runtime_from_env()


def _event(body):
    def post(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message[:1024])

    return post


def _snapshot(body) -> dict[str, Any]:
    return {"spec": dict(body.get("spec") or {}), "status": dict(body.get("status") or {})}


@kopf.index(GROUP, VERSION, "artifacts")
def artifact_index(namespace: str, name: str, body, **_: Any):
    return {(namespace, name): _snapshot(body)}


@kopf.index(GROUP, VERSION, "judgeservers")
def judge_index(namespace: str, name: str, body, **_: Any):
    return {(namespace, name): _snapshot(body)}


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
def job_index(namespace: str, name: str, body, labels, **_: Any):
    uid = labels.get("proctor.dev/run-uid")
    if not uid:
        return None
    spec = body.get("spec") or {}
    return {
        (namespace, uid): {
            "name": name,
            "spec": {k: spec.get(k) for k in ("suspend", "parallelism", "completions")},
            "status": dict(body.get("status") or {}),
        }
    }


def _by_name(index, namespace: str) -> dict[str, dict[str, Any]]:
    return {name: next(iter(values)) for (ns, name), values in index.items() if ns == namespace and values}


async def _guard(memo, kind: str, coroutine):
    try:
        return await coroutine
    except Exception as exc:
        memo.runtime.state.error(kind, type(exc).__name__)
        raise kopf.TemporaryError(
            f"{kind} reconciliation failed: {exc}", delay=min(30.0, RESYNC_S * 3)
        ) from exc


@kopf.timer(GROUP, VERSION, "evalruns", interval=RESYNC_S)
async def evalrun_timer(body, meta, memo, patch, artifact_index, judge_index, job_index, **_: Any) -> None:
    namespace = meta["namespace"]
    jobs = {j["name"]: j for j in job_index.get((namespace, meta["uid"]), [])}
    status = await _guard(
        memo,
        "EvalRun",
        evalrun.reconcile(
            memo.runtime,
            dict(body),
            _by_name(artifact_index, namespace),
            _by_name(judge_index, namespace),
            jobs,
            _event(body),
        ),
    )
    if status is not None:
        patch.status.update(status)


@kopf.timer(GROUP, VERSION, "judgeservers", interval=JUDGE_RESYNC_S)
async def judgeserver_timer(body, memo, patch, **_: Any) -> None:
    status = await _guard(memo, "JudgeServer", judgeserver.reconcile(memo.runtime, dict(body), _event(body)))
    if status is not None:
        patch.status.update(status)


@kopf.timer(GROUP, VERSION, "artifacts", interval=RESYNC_S)
async def artifact_timer(body, memo, patch, **_: Any) -> None:
    status = await _guard(memo, "Artifact", artifact.reconcile(memo.runtime, dict(body), _event(body)))
    if status is not None:
        patch.status.update(status)


@kopf.on.delete(
    GROUP, VERSION, "evalruns", when=lambda spec, **_: bool((spec.get("storage") or {}).get("deleteOnFinish"))
)
async def evalrun_delete_data(body, meta, memo, **_: Any) -> None:
    await evalrun.delete_data(memo.runtime, dict(body))


@kopf.on.delete(GROUP, VERSION, "evalruns", optional=True)
async def evalrun_forget(meta, memo, **_: Any) -> None:
    memo.runtime.state.forget_run(meta["uid"])
    memo.runtime.runs.pop(meta["uid"], None)


@kopf.on.delete(GROUP, VERSION, "judgeservers", optional=True)
async def judgeserver_forget(meta, memo, **_: Any) -> None:
    memo.runtime.state.judges.pop((meta["namespace"], meta["name"]), None)
    memo.runtime.judge_checks.pop((meta["namespace"], meta["name"], meta["uid"]), None)
