"""The test environment's teardown must never take a recycled pid for one of its own processes (this
machine's pid_max is 32768 and the sandbox forks thousands of processes): it would report a false
leftover and SIGKILL someone else's process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.cluster.procs import pid_records, start_time, still_ours


def test_a_pid_is_ours_only_with_the_start_time_it_was_recorded_with():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        started = start_time(proc.pid)
        assert started is not None
        assert still_ours(proc.pid, started)
        # the same pid number with another start time: a recycled pid, someone else's process
        assert not still_ours(proc.pid, started - 1)
    finally:
        proc.kill()
        proc.wait()
    assert not still_ours(proc.pid, started)


def test_a_dead_leaders_process_group_is_still_ours():
    """The group's leader died but a child it started lives on: that is a real leftover."""
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print('ready', flush=True); time.sleep(30)",
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert leader.stdout.readline().strip() == "ready"
        started = start_time(leader.pid)
        leader.kill()
        leader.wait()
        time.sleep(0.1)
        assert still_ours(leader.pid, started)  # its child is still in the group
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
    time.sleep(0.1)
    assert not still_ours(leader.pid, started)


def test_pid_files_with_and_without_start_times():
    assert pid_records("12 345\n13\n\n14 \n") == [(12, 345), (13, None), (14, None)]
