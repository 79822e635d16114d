"""kopf wiring, and nothing else.

kopf watches EvalRuns, JudgeServers, Artifacts and Proctor's Jobs; each event only updates the
in-memory picture (`Runtime.observe`) and wakes the reconcile loop (`proctor.controllers.loop`),
which does all the work level-based. No per-object kopf handler state is kept: no finalizers, no
annotations, no `status.kopf` — the operator's only writes are its children, its status patches and
Events, which keeps API requests per run small and makes a restart harmless.

    kopf run -m proctor.handlers          # or: proctor operator
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from proctor.api.common import GROUP, VERSION

log = logging.getLogger("proctor.handlers")
MANAGED = {"app.kubernetes.io/managed-by": "proctor"}


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    from proctor.controllers import loop
    from proctor.controllers.bootstrap import runtime_from_env
    from proctor.controllers.leader import LeaderElection

    settings.posting.level = logging.WARNING  # phase changes are posted by the controllers
    settings.watching.server_timeout = 270
    settings.networking.request_timeout = 60
    if getattr(memo, "runtime", None) is None:
        memo.runtime = runtime_from_env()
    rt = memo.runtime
    # Store I/O runs in threads; the default pool (CPUs + 4) is too small for many runs at once.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=32, thread_name_prefix="io")
    )
    leader = None
    if rt.config.leader_election_namespace:
        leader = LeaderElection(rt.cluster, rt.config.leader_election_namespace)
        memo.leader_task = asyncio.create_task(leader.run())
    try:
        await rt.store_for("", None)  # build the default store's client before the first run needs it
    except Exception as exc:  # a store that is down now may be up later: runs retry on their own
        log.warning("the default store is not reachable yet: %s", exc)
    memo.loop_task = asyncio.create_task(loop.run(rt, leader))


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for name in ("loop_task", "leader_task"):
        task = getattr(memo, name, None)
        if task is not None:
            task.cancel()


def _observe(kind: str, event_type: str | None, body, memo) -> dict[str, Any] | None:
    if event_type is None:  # the initial listing arrives as events without a type in some kopf versions
        event_type = "ADDED"
    return memo.runtime.observe(kind, event_type, dict(body))


@kopf.on.event(GROUP, VERSION, "evalruns")
async def evalrun_event(type: str, body, memo, **_: Any) -> None:
    from proctor.controllers import evalrun

    gone = _observe("EvalRun", type, body, memo)
    if gone is not None:
        rt = memo.runtime
        uid = gone["metadata"]["uid"]
        rt.state.forget_run(uid)
        rt.runs.pop(uid, None)
        if ((gone.get("spec") or {}).get("storage") or {}).get("deleteOnFinish"):
            await evalrun.delete_data(rt, gone)


@kopf.on.event(GROUP, VERSION, "judgeservers")
async def judgeserver_event(type: str, body, memo, **_: Any) -> None:
    gone = _observe("JudgeServer", type, body, memo)
    if gone is not None:
        meta = gone["metadata"]
        memo.runtime.state.judges.pop((meta["namespace"], meta["name"]), None)
        memo.runtime.judge_checks.pop((meta["namespace"], meta["name"], meta["uid"]), None)


@kopf.on.event(GROUP, VERSION, "artifacts")
async def artifact_event(type: str, body, memo, **_: Any) -> None:
    _observe("Artifact", type, body, memo)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(type: str, body, memo, **_: Any) -> None:
    _observe("Job", type, body, memo)
