"""The trusted harness workers retire themselves before an answer's data or their age can matter."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from proctor_jobs.oracle import harness_pool, wire

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def _candidate(sock: socket.socket, value) -> None:
    """The program's side of the protocol: take the code, say ready, answer every call with `value`."""
    fd = sock.fileno()
    wire.recv_frame(fd)
    wire.send_frame(fd, {"event": "ready"})
    while (message := wire.recv_frame(fd)) is not None:
        assert "call" in message
        wire.send_frame(fd, {"ok": wire.encode_value(value)})
    sock.close()


def _run(worker: harness_pool.HarnessWorker, value, test: str, wall: float = 5.0) -> dict:
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    program = threading.Thread(target=_candidate, args=(mine, value))
    program.start()
    job = {
        "mode": "harness",
        "code": "",
        "filename": "<solution>",
        "entry": "f",
        "signature": "",
        "test": test,
        "wall": wall,
    }
    worker.assign(1, job, theirs.fileno(), backstop=0)
    theirs.close()
    reply = worker.read_reply()
    program.join(wall)
    assert reply is not None
    return reply


def test_a_worker_runs_test_after_test_and_retires_at_its_job_limit(monkeypatch):
    monkeypatch.setattr(harness_pool, "MAX_JOBS", 3)  # read by the forked worker
    worker = harness_pool.HarnessWorker()
    try:
        replies = [_run(worker, 4, "assert f(2) == 4\n") for _ in range(3)]
        assert [r["verdict"]["passed"] for r in replies] == [True, True, True]
        assert [r["retiring"] for r in replies] == [False, False, True]
    finally:
        worker.stop()


def test_a_worker_bloated_by_an_answers_value_retires(monkeypatch):
    monkeypatch.setattr(harness_pool, "MAX_GROWTH", 32 * 1024 * 1024)
    worker = harness_pool.HarnessWorker()
    try:
        small = _run(worker, [1, 2], "assert f() == [1, 2]\n")
        assert small["verdict"]["passed"] and not small["retiring"]
        # ~48 MB of list in the worker; moving it takes seconds on a busy machine: a generous deadline,
        # since what is tested is the retirement, not the speed
        huge = _run(worker, [0] * 6_000_000, "assert len(f()) == 6_000_000\n", wall=60.0)
        assert huge["verdict"]["passed"] and huge["retiring"]
    finally:
        worker.stop()


def test_a_failing_test_is_a_verdict_and_the_worker_stays():
    worker = harness_pool.HarnessWorker()
    try:
        failed = _run(worker, 5, "assert f(2) == 4, 'two doubled'\n")
        assert failed["verdict"]["passed"] is False
        assert failed["verdict"]["exception"] == {"type": "AssertionError", "message": "two doubled"}
        assert not failed["retiring"]
        assert _run(worker, 4, "assert f(2) == 4\n")["verdict"]["passed"]
    finally:
        worker.stop()
