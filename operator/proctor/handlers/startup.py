"""Start-up, shut-down and health: kopf's settings, the services, leader election, the liveness probe."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from proctor.handlers.indexes import MANAGED
from proctor.handlers.wake import Wakers

log = logging.getLogger("proctor.handlers")
FINALIZER = "proctor.dev/finalizer"
#: a daemon whose pass has not come back for this long is stuck: the liveness probe fails
STUCK_AFTER_S = 600.0
#: the kinds Proctor creates and watches (only its own, by label)
CHILD_RESOURCES = (
    ("batch", "v1", "jobs"),
    ("apps", "v1", "deployments"),
    ("v1", "services"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)


def configure(settings: kopf.OperatorSettings) -> None:
    settings.posting.level = logging.WARNING  # phase changes are posted by the controllers
    # Every request kopf makes has a deadline; watches are re-opened by the server before kopf gives up.
    settings.networking.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    # Only Proctor's children cross the wire: the selector goes to the API server (not kopf's
    # client-side `labels=` filter, which would still receive every such object in the watched
    # namespaces).
    managed = ",".join(f"{k}={v}" for k, v in MANAGED.items())
    for resource in CHILD_RESOURCES:
        settings.watching.label_selectors[resource] = managed
    # kopf's own marks carry Proctor's name: the finalizer of daemons and of data deletion, and the
    # progress of the one change-detecting handler (delete-data) in annotations, never in status.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="proctor.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="proctor.dev", key="last-handled-configuration"
    )


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    from proctor.controllers.bootstrap import services_from_env
    from proctor.controllers.leader import LeaderElection

    configure(settings)
    if getattr(memo, "services", None) is None:
        memo.services = services_from_env()
    svc = memo.services
    memo.wakers = Wakers()
    memo.heartbeats = {}
    memo.tasks = set()
    # Store I/O runs in threads; the default pool (CPUs + 4) is too small for many runs at once.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=32, thread_name_prefix="io")
    )
    memo.leader = None
    memo.leader_task = None
    if svc.config.leader_election_namespace:
        lease = svc.config.leader_lease_seconds
        memo.leader = LeaderElection(
            svc.cluster, svc.config.leader_election_namespace, duration_s=lease, renew_s=lease / 3
        )
        svc.cluster.may_write = memo.leader.is_leading
        memo.leader_task = asyncio.create_task(memo.leader.run(), name="leader election")
    try:
        await svc.store_for("", None)  # build the default store's client before the first run needs it
    except Exception as exc:  # a store that is down now may be up later: runs retry on their own
        log.warning("the default store is not reachable yet: %s", exc)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "leader_task", None)
    if task is not None:
        task.cancel()
        await memo.leader.release()


@kopf.on.probe(id="reconcilers")
def health(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    """Liveness: leader election still runs, and no daemon's pass has hung (API and store calls all
    have deadlines, so a pass that does not come back means the process is wedged)."""
    task = getattr(memo, "leader_task", None)
    if task is not None and task.done():
        raise kopf.PermanentError("leader election has stopped")
    now = time.monotonic()
    oldest = max((now - t for t in getattr(memo, "heartbeats", {}).values()), default=0.0)
    if oldest > STUCK_AFTER_S:
        raise kopf.PermanentError(f"a reconciliation pass has not returned for {oldest:.0f} s")
    leader = getattr(memo, "leader", None)
    return {
        "daemons": memo.wakers.registered() if hasattr(memo, "wakers") else 0,
        "leading": True if leader is None else leader.leading.is_set(),
        "oldest_pass_s": round(oldest, 1),
    }
