"""Two operator replicas on the real control plane: the leader is frozen (SIGSTOP), the standby takes the
Lease within its duration and finishes the run, and the frozen leader, thawed, writes nothing more.

Who wrote what is read from each replica's own count of its API requests (`proctor_api_requests_total`,
counted before a request leaves): the standby has made no write while the leader led, and the old leader
makes none after it is thawed, even though it was frozen in the middle of its work. (kopf's finalizer
writes are idempotent and come from both replicas; reconciliation — Jobs, status, Events — from one.)
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import OperatorProcess, wait_for
from tests.e2e.test_operator_lifecycle import metric, small_run

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "humanevalv"
LEASE_S = 12  # PROCTOR_LEADER_LEASE_SECONDS (30 by default): renewed every 4 s
WRITES = (("create", "Job"), ("patch", "evalruns/status"), ("create", "Event"), ("create", "Artifact"))


def writes(op: OperatorProcess) -> float:
    text = op.metrics()
    return sum(metric(text, "proctor_api_requests_total", verb=v, resource=r) for v, r in WRITES)


def holder(kube) -> str:
    lease = kube.get("lease", "proctor-operator") or {}
    return (lease.get("spec") or {}).get("holderIdentity") or ""


def test_a_frozen_leader_is_replaced_within_the_lease_and_never_writes_again(k8s, s3, kube, tmp_path):
    replicas = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        op = OperatorProcess(
            k8s, s3, kube.namespace, tmp_path / name, {"PROCTOR_LEADER_LEASE_SECONDS": str(LEASE_S)}
        )
        op.election = ["--leader-election-namespace", kube.namespace]
        replicas.append(op)
    a, b = replicas
    try:
        a.start()
        wait_for(lambda: holder(kube).endswith(f"-{a.proc.pid}"), 30, "replica a to take the Lease")
        b.start()
        kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
        kube.apply(small_run("failover"))
        wait_for(lambda: kube.items("jobs", "proctor.dev/run=failover"), 90, "the run's Job (made by a)")
        assert writes(b) == 0, "the standby wrote while the leader led"
        a_writes = writes(a)
        assert a_writes > 0

        os.kill(a.proc.pid, signal.SIGSTOP)  # frozen mid-work: no renewal, no step-down of its own
        frozen_at = time.monotonic()
        wait_for(lambda: holder(kube).endswith(f"-{b.proc.pid}"), LEASE_S + 20, "replica b to take the Lease")
        took = time.monotonic() - frozen_at
        assert took <= LEASE_S + 10, f"takeover after {took:.0f} s"

        run = kube.wait_phase("evalrun", "failover", ("Succeeded", "Failed"), timeout=240)
        assert run["status"]["phase"] == "Succeeded", run["status"]
        assert writes(b) > 0
        # b adopted a's Job, no duplicate
        assert len(kube.items("jobs", "proctor.dev/run=failover,proctor.dev/component=worker")) == 1

        os.kill(a.proc.pid, signal.SIGCONT)
        time.sleep(6)  # several resync intervals: a would write now if it still believed it led
        assert writes(a) == a_writes, "the thawed leader wrote after it lost the Lease"
        assert holder(kube).endswith(f"-{b.proc.pid}")
        lease = kube.get("lease", "proctor-operator")
        assert lease["spec"]["leaseTransitions"] >= 1
        assert "not renewed in time" in a.log() or "lost the lease" in a.log(), a.log()[-2000:]
        print(json.dumps({"takeover_s": round(took, 1)}))
    finally:
        for op in replicas:
            if op.proc and op.proc.poll() is None:
                os.kill(op.proc.pid, signal.SIGCONT)
            op.stop()
