"""Polling, shared by every test that waits for a cluster or a process to get somewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def poll(what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.2) -> Any:
    """Call `check()` until it returns something truthy and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {str(last)[:500]}")
