"""One kopf daemon per active EvalRun, per JudgeServer and per pending Artifact.

Each daemon loops: wait to lead (leader election), read the object (kopf's live view) and what it
depends on (kopf's indexes), let its controller compute and apply one pass, patch the status when it
changed, then sleep until an event wakes it (wake.py) or its resync interval passes.

kopf stops a daemon when its object is deleted — kopf's finalizer holds the deletion until the daemon
has stopped — or when the object no longer matches the daemon's filter: a finished run, a Ready or
Invalid Artifact. Then kopf removes its finalizer (two writes per object's active life), and a
finished object costs nothing more. A deleted object is never reconciled again, even when the watch
missed its deletion (a re-list after 410 Gone): until its finalizer is gone, the object still exists
with a deletion mark the re-list shows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf

from proctor.api.common import GROUP, VERSION
from proctor.cluster import NotFound, NotLeading
from proctor.controllers.services import JudgeCache, RunCache
from proctor.handlers import wake
from proctor.handlers.indexes import by_name, children_of, jobs_in, jobs_of
from proctor.reconcile.evalrun import TERMINAL

log = logging.getLogger("proctor.daemons")
PLURALS = {"EvalRun": "evalruns", "JudgeServer": "judgeservers", "Artifact": "artifacts"}
#: kopf sets the stop flag, waits this long for the daemon to finish its pass, then cancels it
CANCELLATION = {"cancellation_backoff": 2.0, "cancellation_timeout": 30.0}


def run_is_active(body, **_: Any) -> bool:
    """A run that can still change: not finished, or finished for an older generation of its spec."""
    status, meta = body.get("status") or {}, body.get("metadata") or {}
    return not (
        status.get("phase") in TERMINAL and status.get("observedGeneration") == meta.get("generation")
    )


def artifact_is_pending(body, **_: Any) -> bool:
    status, meta = body.get("status") or {}, body.get("metadata") or {}
    settled = status.get("phase") in ("Ready", "Invalid")
    return not (settled and status.get("observedGeneration") == meta.get("generation"))


class Own:
    """The daemon's object: kopf's live view, or the status this daemon just patched when the watch
    has not echoed it back yet (so the next pass does not compute from a stale status)."""

    def __init__(self, body) -> None:
        self.body = body
        self.stored: dict[str, Any] | None = None
        self.version_then: str | None = None

    def current(self) -> dict[str, Any]:
        live = dict(self.body)
        if self.stored is not None and live["metadata"].get("resourceVersion") == self.version_then:
            return self.stored
        self.stored = None
        return live

    def patched(self, before: dict[str, Any], stored: Any, status: dict[str, Any]) -> None:
        self.version_then = before["metadata"].get("resourceVersion")
        self.stored = stored if isinstance(stored, dict) else {**before, "status": status}


def _poster(memo, obj: dict[str, Any]):
    tasks: set[asyncio.Task] = memo.tasks

    def post(type_: str, reason: str, message: str) -> None:
        task = asyncio.get_running_loop().create_task(memo.services.post_event(obj, type_, reason, message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return post


async def _lead(memo, stopped) -> bool:
    """True when this replica may reconcile now (no election, or it holds the Lease)."""
    leader = memo.leader
    if leader is None or leader.is_leading():
        return True
    waiting = asyncio.ensure_future(leader.leading.wait())
    halt = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({waiting, halt}, timeout=leader.renew_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        halt.cancel()
    return False


async def _loop(kind: str, key, memo, stopped, body, interval: float, one_pass) -> None:
    """The daemon's life: passes until kopf stops it; a failed pass is logged, counted and retried."""
    svc = memo.services
    event = memo.wakers.register(key)
    own = Own(body)
    event.set()  # the first pass at once
    try:
        while not stopped:
            memo.heartbeats[key] = time.monotonic()
            if not await _lead(memo, stopped):
                continue
            await wake.sleep(event, stopped, interval)
            if stopped:
                break
            obj = own.current()
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue  # kopf stops this daemon next; nothing more to do for a deleted object
            try:
                status = await one_pass(obj, _poster(memo, obj))
                if status is not None:
                    stored = await svc.cluster.patch_status(
                        PLURALS[kind], meta["namespace"], meta["name"], status
                    )
                    own.patched(obj, stored, status)
                    memo.wakers.note_phase(key, status.get("phase"))
                else:
                    memo.wakers.note_phase(key, (obj.get("status") or {}).get("phase"))
            except NotFound:
                log.info("%s %s/%s is gone; its daemon ends", kind, meta["namespace"], meta["name"])
                return
            except NotLeading:
                log.info("%s %s/%s: the Lease was lost mid-pass; its writes stop", kind, *key[1:])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                svc.state.error(kind, type(exc).__name__)
                log.warning(
                    "reconciling %s %s/%s failed (will retry): %s",
                    kind,
                    meta["namespace"],
                    meta["name"],
                    exc,
                    exc_info=True,
                )
                await asyncio.sleep(1.0)  # a little back-off before the retry
                event.set()
    finally:
        memo.wakers.unregister(key, event)
        memo.heartbeats.pop(key, None)


@kopf.daemon(GROUP, VERSION, "evalruns", id="reconcile", when=run_is_active, **CANCELLATION)
async def evalrun_daemon(
    stopped,
    body,
    meta,
    namespace: str,
    memo: kopf.Memo,
    jobs_by_run,
    artifacts_by_namespace,
    judgeservers_by_namespace,
    evalruns_by_namespace,
    networkpolicies_by_owner,
    **_: Any,
) -> None:
    from proctor.controllers import evalrun

    svc, uid, cache = memo.services, meta["uid"], RunCache()

    async def one_pass(obj, post):
        return await evalrun.reconcile(
            svc,
            cache,
            obj,
            by_name(artifacts_by_namespace, namespace),
            by_name(judgeservers_by_namespace, namespace),
            jobs_of(jobs_by_run, namespace, uid),
            by_name(evalruns_by_namespace, namespace),
            post,
            children_of(namespace, uid, NetworkPolicy=networkpolicies_by_owner),
            jobs_in(jobs_by_run, namespace),
        )

    key = ("EvalRun", namespace, uid)
    await _loop("EvalRun", key, memo, stopped, body, svc.config.resync_seconds, one_pass)


@kopf.daemon(GROUP, VERSION, "judgeservers", id="reconcile", **CANCELLATION)
async def judgeserver_daemon(
    stopped,
    body,
    meta,
    namespace: str,
    memo: kopf.Memo,
    deployments_by_owner,
    services_by_owner,
    networkpolicies_by_owner,
    calibration_jobs_by_owner,
    **_: Any,
) -> None:
    from proctor.controllers import judgeserver

    svc, cache, uid = memo.services, JudgeCache(), meta["uid"]

    async def one_pass(obj, post):
        children = children_of(
            namespace,
            uid,
            Deployment=deployments_by_owner,
            Service=services_by_owner,
            NetworkPolicy=networkpolicies_by_owner,
        )
        calibration_jobs = {
            job["metadata"]["name"]: job for job in calibration_jobs_by_owner.get((namespace, uid), ())
        }
        return await judgeserver.reconcile(svc, obj, post, cache, children, calibration_jobs)

    key = ("JudgeServer", namespace, meta["name"])
    await _loop("JudgeServer", key, memo, stopped, body, svc.config.judge_resync_seconds, one_pass)


@kopf.daemon(GROUP, VERSION, "artifacts", id="reconcile", when=artifact_is_pending, **CANCELLATION)
async def artifact_daemon(
    stopped, body, meta, namespace: str, memo: kopf.Memo, evalruns_by_namespace, **_: Any
) -> None:
    from proctor.controllers import artifact

    svc, ingest_jobs = memo.services, set()

    async def one_pass(obj, post):
        runs = by_name(evalruns_by_namespace, namespace)
        return await artifact.reconcile(svc, obj, post, ingest_jobs, runs)

    key = ("Artifact", namespace, meta["name"])
    await _loop("Artifact", key, memo, stopped, body, svc.config.resync_seconds, one_pass)
