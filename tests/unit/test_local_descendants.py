"""Ctrl-C stops a local run's workers and everything they started: the process tree read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from proctor.local import descendants


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def test_descendants_finds_grandchildren_that_left_their_parent_running():
    # A shell with a background grandchild: killing the shell alone would leave `sleep` running.
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    try:
        def sleeping() -> list[int]:  # a child is `sh` until it has exec'd `sleep`
            return [pid for pid in descendants(shell.pid) if _cmdline(pid).startswith("sleep")]

        deadline = time.monotonic() + 5
        while len(sleeping()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(sleeping()) == 2 == len(descendants(shell.pid))
        assert shell.pid in descendants(os.getpid())
    finally:
        for pid in [shell.pid, *descendants(shell.pid)]:
            os.kill(pid, signal.SIGKILL)
        shell.wait()
    assert descendants(shell.pid) == []  # gone: nothing to read
