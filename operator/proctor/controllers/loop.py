"""The reconcile loop: every object the watches saw is reconciled level-based, from observed state.

An event (an EvalRun, JudgeServer, Artifact or one of its Jobs changed) marks its object dirty and
wakes the loop, which starts reconciling it at once — without waiting for other objects' passes to
finish, so one slow run never delays a new one. Every `resync` seconds every object that can still
change is marked anyway, so a missed event only delays. One object is never reconciled twice at the
same time; an object marked while in flight is reconciled again right after. Finished runs and
stored Artifacts are left alone. Only the leader reconciles (see leader.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from proctor.controllers import artifact, evalrun, judgeserver
from proctor.controllers.runtime import Runtime

log = logging.getLogger("proctor.loop")
PLURALS = {"EvalRun": "evalruns", "JudgeServer": "judgeservers", "Artifact": "artifacts"}


def _settled(kind: str, obj: dict[str, Any]) -> bool:
    """Objects that no longer change unless their spec does (the watch marks those dirty)."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    if kind == "EvalRun":
        return (
            status.get("phase") in ("Succeeded", "Failed") and status.get("observedGeneration") == generation
        )
    if kind == "Artifact":
        return status.get("phase") in ("Ready", "Invalid") and status.get("observedGeneration") == generation
    return False


async def reconcile_one(rt: Runtime, kind: str, namespace: str, name: str) -> None:
    obj = rt.objects[kind].get((namespace, name))
    if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return

    def post(type_: str, reason: str, message: str) -> None:
        asyncio.get_running_loop().create_task(rt.post_event(obj, type_, reason, message))

    try:
        if kind == "EvalRun":
            status = await evalrun.reconcile(
                rt,
                obj,
                rt.in_namespace("Artifact", namespace),
                rt.in_namespace("JudgeServer", namespace),
                rt.jobs_of(namespace, obj["metadata"]["uid"]),
                post,
            )
        elif kind == "JudgeServer":
            status = await judgeserver.reconcile(rt, obj, post)
        else:
            status = await artifact.reconcile(rt, obj, post)
        if status is not None:
            stored = await rt.cluster.patch_status(PLURALS[kind], namespace, name, status)
            # Keep our copy current without waiting for the watch to echo the change back.
            current = rt.objects[kind].get((namespace, name))
            if current is not None:
                rt.objects[kind][(namespace, name)] = (
                    stored if isinstance(stored, dict) else {**obj, "status": status}
                )
    except Exception as exc:
        rt.state.error(kind, type(exc).__name__)
        log.warning("reconciling %s %s/%s failed (will retry): %s", kind, namespace, name, exc, exc_info=True)
        await asyncio.sleep(1.0)  # a little back-off before the retry the next resync brings
        rt.dirty.add((kind, namespace, name))


async def run(rt: Runtime, leader=None, concurrency: int = 16) -> None:
    semaphore = asyncio.Semaphore(concurrency)
    in_flight: set[tuple[str, str, str]] = set()
    tasks: set[asyncio.Task] = set()
    intervals = {
        "EvalRun": rt.config.resync_seconds,
        "JudgeServer": rt.config.judge_resync_seconds,
        "Artifact": rt.config.resync_seconds,
    }
    last_full = dict.fromkeys(intervals, 0.0)

    async def work(key: tuple[str, str, str]) -> None:
        try:
            async with semaphore:
                await reconcile_one(rt, *key)
        finally:
            in_flight.discard(key)
            if key in rt.dirty:
                rt.wake.set()  # marked again while it ran: go round once more

    while True:
        try:
            await asyncio.wait_for(rt.wake.wait(), timeout=min(intervals.values()) / 2)
        except TimeoutError:
            pass
        rt.wake.clear()
        if leader is not None and not leader.leading.is_set():
            await leader.leading.wait()
        now = time.monotonic()
        for kind, interval in intervals.items():
            if now - last_full[kind] >= interval:
                last_full[kind] = now
                rt.dirty |= {
                    (kind, ns, n) for (ns, n), obj in rt.objects[kind].items() if not _settled(kind, obj)
                }
        # Inputs before runs: an Artifact or judge that becomes Ready can unblock a run at once.
        ready = sorted((k for k in rt.dirty if k not in in_flight), key=lambda k: k[0] == "EvalRun")
        for key in ready:
            rt.dirty.discard(key)
            in_flight.add(key)
            task = asyncio.create_task(work(key))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
