"""Which daemon to wake when the cluster changes: the one piece of scheduling Proctor keeps itself.

kopf runs one daemon per EvalRun, JudgeServer and pending Artifact; each sleeps until it is woken or
its resync interval passes. kopf's event handlers (handlers/events.py) call `wake` after the indexes
took the event in (kopf indexes an event before it calls the handlers), so a woken daemon always
sees the change in the indexes. A missed wake-up only delays a pass until the resync.
"""

from __future__ import annotations

import asyncio
from typing import Any

Key = tuple[str, str, str]  # (kind, namespace, name)


class Wakers:
    def __init__(self) -> None:
        self._events: dict[Key, asyncio.Event] = {}
        #: the phase each registered daemon last reported (runs waiting for an input are woken by it)
        self._phases: dict[Key, str | None] = {}
        #: the generation (and deletion mark) last seen per object: an object's own status patch
        #: echoing back through the watch wakes nobody
        self._seen: dict[Key, Any] = {}

    def register(self, key: Key) -> asyncio.Event:
        event = self._events[key] = asyncio.Event()
        self._phases.setdefault(key, None)
        return event

    def unregister(self, key: Key, event: asyncio.Event) -> None:
        if self._events.get(key) is event:
            del self._events[key]
            self._phases.pop(key, None)
            self._seen.pop(key, None)

    def forget(self, key: Key) -> None:
        """The object is gone: drop what was seen of it."""
        self._seen.pop(key, None)

    def registered(self) -> int:
        return len(self._events)

    def note_phase(self, key: Key, phase: str | None) -> None:
        if key in self._events:
            self._phases[key] = phase

    def wake(self, key: Key) -> None:
        event = self._events.get(key)
        if event is not None:
            event.set()

    def changed(self, key: Key, marker: Any) -> bool:
        """True when `marker` (generation, deletion...) differs from the last one seen for `key`."""
        if self._seen.get(key) == marker:
            return False
        self._seen[key] = marker
        return True

    def wake_waiting_runs(self, namespace: str) -> None:
        """An input (Artifact, JudgeServer) changed: runs not yet started may be able to start now."""
        for key, phase in self._phases.items():
            if key[0] == "EvalRun" and key[1] == namespace and phase in (None, "Pending"):
                self.wake(key)


async def sleep(event: asyncio.Event, stopped: Any, timeout: float, settle: float = 0.05) -> None:
    """Until `event` is set, the daemon is asked to stop, or `timeout` passes; then a short settle
    so that a burst of events (a Job's pods changing one after the other) costs one pass."""
    if not event.is_set():
        waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopped.wait())}
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
    if not stopped:
        await asyncio.sleep(settle)
    event.clear()
