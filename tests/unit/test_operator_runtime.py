"""What is left of a hand-built runtime beside kopf, tested on its own: waking daemons (handlers/wake.py),
the daemons' filters and own-status bookkeeping (handlers/daemons.py), the data-deletion filter, and
leader election on a Lease (controllers/leader.py) against a fake API."""

from __future__ import annotations

import asyncio

import pytest

from proctor.controllers import leader as leader_mod
from proctor.controllers.leader import LeaderElection
from proctor.handlers.daemons import Own, artifact_is_pending, run_is_active
from proctor.handlers.deletion import deletes_data
from proctor.handlers.wake import Wakers, sleep


class Flag:
    """kopf's `stopped` for a daemon: falsy until set, `await flag.wait()`."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


def test_wakers_wake_the_daemon_an_event_concerns_and_only_waiting_runs_for_inputs():
    async def scenario():
        w = Wakers()
        pending = w.register(("EvalRun", "ns", "uid-1"))
        running = w.register(("EvalRun", "ns", "uid-2"))
        elsewhere = w.register(("EvalRun", "other", "uid-3"))
        w.note_phase(("EvalRun", "ns", "uid-2"), "Running")
        w.wake_waiting_runs("ns")  # an Artifact or JudgeServer changed in "ns"
        assert pending.is_set() and not running.is_set() and not elsewhere.is_set()
        w.wake(("EvalRun", "ns", "uid-2"))
        assert running.is_set()
        w.wake(("EvalRun", "ns", "nobody"))  # no daemon: nothing happens
        # A daemon replaced by a new one (kopf restarted it): the old one's unregister is a no-op.
        newer = w.register(("EvalRun", "ns", "uid-1"))
        w.unregister(("EvalRun", "ns", "uid-1"), pending)
        w.wake(("EvalRun", "ns", "uid-1"))
        assert newer.is_set() and w.registered() == 3

    asyncio.run(scenario())


def test_an_objects_own_status_echo_wakes_nobody_a_spec_edit_or_deletion_does():
    w = Wakers()
    key = ("EvalRun", "ns", "uid")
    assert w.changed(key, (1, False))  # first sight
    assert not w.changed(key, (1, False))  # its status patched: same generation
    assert w.changed(key, (2, False))  # spec edited
    assert w.changed(key, (2, True))  # marked for deletion
    w.forget(key)
    assert w.changed(key, (2, True))


def test_sleep_returns_when_woken_stopped_or_at_the_resync():
    async def timed(coro) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await coro
        return loop.time() - start

    async def scenario():
        event, stopped = asyncio.Event(), Flag()
        assert await timed(sleep(event, stopped, timeout=0.2, settle=0)) >= 0.19  # the resync
        asyncio.get_running_loop().call_later(0.05, event.set)
        assert await timed(sleep(event, stopped, timeout=5, settle=0)) < 1
        assert not event.is_set()  # consumed
        asyncio.get_running_loop().call_later(0.05, stopped.event.set)
        assert await timed(sleep(event, stopped, timeout=5)) < 1

    asyncio.run(scenario())


def test_daemon_filters_finished_runs_settled_artifacts_and_runs_that_delete_data():
    def body(phase, observed, generation=1):
        return {
            "metadata": {"generation": generation},
            "status": {"phase": phase, "observedGeneration": observed},
        }

    assert run_is_active({"metadata": {"generation": 1}})
    assert run_is_active(body("Running", 1))
    assert not run_is_active(body("Succeeded", 1))
    assert run_is_active(body("Succeeded", 1, generation=2))  # edited after it finished
    assert artifact_is_pending(body("Pending", 1)) and not artifact_is_pending(body("Invalid", 1))
    assert deletes_data({"storage": {"deleteDataWithRun": True}})
    assert deletes_data({"storage": {"deleteOnFinish": True}})  # the deprecated name
    assert not deletes_data({"storage": {}}) and not deletes_data(None)


def test_own_status_is_used_until_the_watch_echoes_a_newer_object():
    live = {"metadata": {"resourceVersion": "5"}, "status": {"phase": "Pending"}}
    own = Own(live)
    assert own.current() == live
    own.patched(live, {"metadata": {"resourceVersion": "6"}, "status": {"phase": "Running"}}, {})
    assert own.current()["status"]["phase"] == "Running"  # the watch has not caught up yet
    live["metadata"]["resourceVersion"] = "6"
    live["status"] = {"phase": "Running", "progress": "1/2"}
    assert own.current() is not None and own.current()["status"]["progress"] == "1/2"


class FakeLeases:
    """A Lease API with optimistic concurrency: a write with an old resourceVersion loses."""

    def __init__(self) -> None:
        self.lease = None
        self.version = 0
        self.hang = False

    async def read_lease(self, namespace, name):
        if self.hang:
            await asyncio.sleep(3600)
        return (
            None if self.lease is None else {**self.lease, "metadata": {"resourceVersion": str(self.version)}}
        )

    async def write_lease(self, namespace, name, body, create):
        if self.hang:
            await asyncio.sleep(3600)
        if create and self.lease is not None:
            return False
        if not create and body["metadata"].get("resourceVersion") != str(self.version):
            return False
        self.version += 1
        self.lease = {"spec": dict(body["spec"])}
        return True


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(leader_mod, "_monotonic", lambda: now[0])
    return now


def test_a_held_lease_is_taken_over_only_after_its_duration_on_the_local_clock(clock):
    async def scenario():
        api = FakeLeases()
        a = LeaderElection(api, "ns", duration_s=30, renew_s=10)
        b = LeaderElection(api, "ns", duration_s=30, renew_s=10)
        a.identity, b.identity = "a", "b"
        assert await a.try_once()
        assert not await b.try_once()  # held and fresh
        clock[0] += 20
        assert not await b.try_once()
        assert await a.try_once()  # a renews: b's clock for expiry starts again
        clock[0] += 25
        assert not await b.try_once()
        clock[0] += 31  # a stopped renewing (frozen or gone) for longer than the duration
        assert await b.try_once()
        assert api.lease["spec"]["holderIdentity"] == "b" and api.lease["spec"]["leaseTransitions"] == 1
        assert not await a.try_once()  # a wakes up: b holds a fresh Lease

    asyncio.run(scenario())


def test_a_leader_whose_renewal_hangs_steps_down_before_a_standby_may_take_over(clock):
    async def scenario():
        api = FakeLeases()
        a = LeaderElection(api, "ns", duration_s=3, renew_s=0.2)
        a.identity = "a"
        task = asyncio.create_task(a.run())
        await asyncio.sleep(0.05)
        assert a.is_leading()
        api.hang = True  # the API server stops answering the renewal
        await asyncio.sleep(0.5)  # the renewal times out after renew_s: a failed renewal
        assert not a.leading.is_set()
        task.cancel()

    asyncio.run(scenario())


def test_leading_ends_at_the_renew_deadline_even_before_a_renewal_returns(clock):
    async def scenario():
        a = LeaderElection(FakeLeases(), "ns", duration_s=30, renew_s=10)
        a.identity = "a"
        assert await a.try_once()
        a.leading.set()
        a.renewed_at = clock[0]
        assert a.is_leading()
        clock[0] += 21  # duration - renew: a standby could take over soon, stop now
        assert not a.is_leading()

    asyncio.run(scenario())


def test_release_lets_a_standby_take_over_at_once(clock):
    async def scenario():
        api = FakeLeases()
        a, b = LeaderElection(api, "ns"), LeaderElection(api, "ns")
        a.identity, b.identity = "a", "b"
        assert await a.try_once()
        a.leading.set()
        assert not await b.try_once()
        await a.release()
        assert api.lease["spec"]["holderIdentity"] == ""
        assert await b.try_once()

    asyncio.run(scenario())
