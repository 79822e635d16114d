"""Leader election on a coordination.k8s.io Lease, so two operator replicas never both reconcile.

The holder renews every `renew_s`; a Lease not renewed within `duration_s` may be taken over. Writes
use the Lease's resourceVersion, so of two contenders exactly one wins. The cost is one request per
renewal for the operator as a whole, not per run or item.

Expiry is judged on this process's monotonic clock (as client-go does): a Lease is expired when its
holder and renew time have not changed for `duration_s` since this replica first saw them, whatever
the holder's clock says. A renewal that fails, or does not answer within `renew_s`, makes the holder
step down at once, and it steps down anyway once `duration_s - renew_s` have passed without a
successful renewal, so it never leads past the moment a standby may take over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time

from proctor.cluster import Cluster

log = logging.getLogger("proctor.leader")


def _monotonic() -> float:
    return time.monotonic()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        self.renewed_at = 0.0  # monotonic time of the last successful write of the Lease
        self._seen: tuple[tuple, float] | None = None  # (holder, renewTime, ...), first seen at

    def _expired(self, spec: dict) -> bool:
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"))
        now = _monotonic()
        if self._seen is None or self._seen[0] != record:
            self._seen = (record, now)
        if not spec.get("holderIdentity"):
            return True
        return now - self._seen[1] > float(spec.get("leaseDurationSeconds") or self.duration_s)

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
            if holder != self.identity and not self._expired(spec):
                return False
            won = await self.cluster.write_lease(
                self.namespace, self.name, self._body(lease, holder != self.identity), create=False
            )
        return won

    async def run(self) -> None:
        while True:
            try:
                leading = await asyncio.wait_for(self.try_once(), timeout=self.renew_s)
            except Exception as exc:  # a timeout included: a hung renewal is a failed one
                log.warning("leader election: %s", exc or type(exc).__name__)
                leading = False
            if leading:
                self.renewed_at = _monotonic()
            if leading and not self.leading.is_set():
                log.info("became the leader (%s)", self.identity)
                self.leading.set()
            elif not leading and self.leading.is_set():
                log.warning("lost the lease; reconciliation stops until it is won back")
                self.leading.clear()
            await asyncio.sleep(self.renew_s if leading else self.renew_s / 2)

    async def release(self) -> None:
        """On a clean shutdown: empty the holder, so a standby takes over at once, not after expiry."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            lease = await self.cluster.read_lease(self.namespace, self.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                body = self._body(lease, False)
                body["spec"]["holderIdentity"] = ""
                await self.cluster.write_lease(self.namespace, self.name, body, create=False)
        except Exception as exc:
            log.warning("cannot release the Lease: %s", exc)

    def is_leading(self) -> bool:
        """Leading, and renewed recently enough that no standby can have taken over yet."""
        if self.leading.is_set() and _monotonic() - self.renewed_at > self.duration_s - self.renew_s:
            log.warning("the Lease was not renewed in time; reconciliation stops until it is")
            self.leading.clear()
        return self.leading.is_set()
