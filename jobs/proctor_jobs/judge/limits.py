"""Per-endpoint state shared by everything in one process: a concurrency limit and outage tracking.

A worker process may run several shards (each with its own event loop, possibly in threads) against
the same judge. The limit is on the *endpoint*, so it must hold across all of them: asyncio's own
Semaphore is bound to one loop, hence this small limiter built on a thread lock that wakes waiters
on whichever loop they belong to.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field


class SharedLimiter:
    """A FIFO counting semaphore usable from any number of event loops and threads."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._lock = threading.Lock()
        self._limit = limit
        self._in_use = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_use(self) -> int:
        return self._in_use

    def lower_to(self, limit: int) -> None:
        """Only ever lowers: two configurations for one endpoint get the more careful one."""
        with self._lock:
            self._limit = max(1, min(self._limit, limit))

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_use < self._limit and not self._waiters:
                self._in_use += 1
                return
            future: asyncio.Future = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove((loop, future))
                    handed_over = False
                except ValueError:
                    handed_over = True  # release() already gave us the slot
            if handed_over:
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                loop, future = self._waiters.popleft()
                try:
                    # The slot passes directly to the waiter: `_in_use` does not change.
                    loop.call_soon_threadsafe(_wake, self, future)
                    return
                except RuntimeError:  # that loop is closed; its waiter is gone
                    continue
            self._in_use -= 1

    async def __aenter__(self) -> SharedLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()


def _wake(limiter: SharedLimiter, future: asyncio.Future) -> None:
    if future.done():
        # Cancelled between hand-over and wake-up: its acquire() passes the slot on.
        return
    future.set_result(None)


@dataclass
class EndpointState:
    """What the process knows about one judge endpoint."""

    url: str
    limiter: SharedLimiter
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_probe_at: float = 0.0
    last_probe_ok: bool = True
    outages: int = 0

    def cached_probe(self, max_age_s: float) -> bool | None:
        with self.lock:
            if time.monotonic() - self.last_probe_at <= max_age_s:
                return self.last_probe_ok
        return None

    def record_probe(self, ok: bool) -> None:
        with self.lock:
            if self.last_probe_ok and not ok:
                self.outages += 1
            self.last_probe_at = time.monotonic()
            self.last_probe_ok = ok


_ENDPOINTS: dict[str, EndpointState] = {}
_ENDPOINTS_LOCK = threading.Lock()


def endpoint(url: str, concurrency: int) -> EndpointState:
    """The process-wide state of an endpoint, created on first use."""
    key = url.rstrip("/")
    with _ENDPOINTS_LOCK:
        state = _ENDPOINTS.get(key)
        if state is None:
            state = _ENDPOINTS[key] = EndpointState(key, SharedLimiter(concurrency))
        else:
            state.limiter.lower_to(concurrency)
        return state


def forget_endpoints() -> None:
    """Drop all endpoint state (tests start each case from a clean process state)."""
    with _ENDPOINTS_LOCK:
        _ENDPOINTS.clear()
