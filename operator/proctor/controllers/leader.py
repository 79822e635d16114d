"""Leader election on a coordination.k8s.io Lease, so two operator replicas never both reconcile.

The holder renews every `renew_s`; a Lease not renewed within `duration_s` may be taken over. Writes
use the Lease's resourceVersion, so of two contenders exactly one wins. The cost is one request per
renewal for the operator as a whole, not per run or item.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket

from proctor.cluster import Cluster

log = logging.getLogger("proctor.leader")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class LeaderElection:
    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str = "proctor-operator",
        duration_s: int = 30,
        renew_s: float = 10.0,
    ) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.duration_s, self.renew_s = duration_s, renew_s
        self.identity = f"{socket.gethostname()}-{os.getpid()}"
        self.leading = asyncio.Event()

    def _body(self, lease: dict | None, acquire: bool) -> dict:
        spec = dict((lease or {}).get("spec") or {})
        now = _fmt(_now())
        if acquire:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=self.duration_s, renewTime=now)
        metadata = {"name": self.name, "namespace": self.namespace}
        if lease:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    async def try_once(self) -> bool:
        lease = await self.cluster.read_lease(self.namespace, self.name)
        if lease is None:
            won = await self.cluster.write_lease(
                self.namespace, self.name, self._body(None, True), create=True
            )
        else:
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
            expired = renewed is None or (_now() - renewed).total_seconds() > float(
                spec.get("leaseDurationSeconds") or 0
            )
            if holder != self.identity and not expired:
                return False
            won = await self.cluster.write_lease(
                self.namespace, self.name, self._body(lease, holder != self.identity), create=False
            )
        return won

    async def run(self) -> None:
        while True:
            try:
                leading = await self.try_once()
            except Exception as exc:
                log.warning("leader election: %s", exc)
                leading = False
            if leading and not self.leading.is_set():
                log.info("became the leader (%s)", self.identity)
                self.leading.set()
            elif not leading and self.leading.is_set():
                log.warning("lost the lease; reconciliation stops until it is won back")
                self.leading.clear()
            await asyncio.sleep(self.renew_s if leading else self.renew_s / 2)
