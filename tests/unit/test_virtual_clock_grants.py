"""The virtual clock's grants of page time never end when a timer is due.

A grant that ended exactly at a timer's due time let Chromium pause page time before or after running
that timer, depending on real time: a loop started by a timer due at 700 ms began at 717 ms in about
3% of busy renders (7 of 240 in one measurement; tests/integration/test_render_clock.py renders the
case in real Chromium, where it fails only now and then). These tests check the arithmetic that rules
it out, against a recording stand-in for the DevTools session (no browser): every grant ends a few
microseconds after its frame's instant, where no timer set on an instant or at an earlier frame's
page time plus whole milliseconds can be due.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest

from proctor_jobs.render.page import GRANT_OFFSET_CYCLE, VirtualClock


class RecordingSession:
    """Answers the two DevTools commands a grant uses and keeps Chromium's page time as Chromium does:
    in whole microseconds, the budget cut to whole microseconds (truncated, the stricter of the two
    ways a double can become an integer)."""

    def __init__(self) -> None:
        self.page_time_us = 0
        self.ends_us: list[int] = []
        self.handlers: dict = {}

    def on(self, event, handler) -> None:
        self.handlers[event] = handler

    async def send(self, method, params=None):
        if method == "Emulation.setVirtualTimePolicy" and "budget" in params:
            self.page_time_us += int(Fraction(params["budget"]) * 1000)
            self.ends_us.append(self.page_time_us)
            asyncio.get_running_loop().call_soon(self.handlers["Emulation.virtualTimeBudgetExpired"], {})
            return {}
        if method == "Emulation.setVirtualTimePolicy":
            return {"virtualTimeTicksBase": 1000.0}
        if method == "HeadlessExperimental.beginFrame":
            return {}
        raise AssertionError(f"unexpected command {method}")


def run_frames(fps: float, frames: int, step: int = 1) -> tuple[VirtualClock, RecordingSession]:
    session = RecordingSession()
    clock = VirtualClock(session, fps)

    async def drive() -> None:
        await clock.start()
        for _ in range(0, frames, step):
            await clock._advance(step)

    asyncio.run(drive())
    return clock, session


@pytest.mark.parametrize("fps", [60.0, 30.0, 24.0])
def test_every_grant_ends_just_after_its_frame_instant_and_never_on_a_whole_millisecond(fps):
    frames = 3 * GRANT_OFFSET_CYCLE
    clock, session = run_frames(fps, frames)
    for index, end_us in enumerate(session.ends_us, start=1):
        instant_us = clock.instant(index) * 1000
        assert 0 < end_us - instant_us < 300, (index, end_us, instant_us)
    # A timer set at page time 0 (the document's scripts) or on an instant is due on a whole
    # millisecond: no grant ends there.
    assert all(end_us % 1000 for end_us in session.ends_us)


def test_a_timer_set_during_a_frame_is_never_due_when_a_later_grant_ends():
    """A timer set in frame j with a delay of whole milliseconds is due at frame j's page time plus
    that delay; it must not coincide with the end of any grant in the next GRANT_OFFSET_CYCLE frames
    (beyond that, only a delay of exactly that many frames' worth could)."""
    _, session = run_frames(60.0, GRANT_OFFSET_CYCLE + 50)
    ends = session.ends_us
    for j, set_at in enumerate(ends):
        later = ends[j + 1 : j + GRANT_OFFSET_CYCLE]
        assert all((end - set_at) % 1000 for end in later), j


def test_page_time_reads_the_frame_instant_in_whole_milliseconds():
    """Pages read the instant, not the offset: performance.now() is coarsened to 0.1 ms by Chromium
    and rounded by VIRTUAL_TIME_SCRIPT, Date.now() truncated; either way the frame's instant."""
    clock, session = run_frames(60.0, GRANT_OFFSET_CYCLE * 2)
    for index, end_us in enumerate(session.ends_us, start=1):
        instant = clock.instant(index)
        assert round(end_us / 1000 + 0.1) == instant  # the coarsened value, at its highest
        assert end_us // 1000 == instant
    assert clock.elapsed_ms == clock.instant(clock.frames)


def test_a_grant_of_many_frames_ends_just_after_the_last_one():
    """Quiet page time runs many frames in one grant; it ends as a single frame's grant would."""
    one_by_one = run_frames(60.0, 120)[1].ends_us
    in_steps = run_frames(60.0, 120, step=12)[1].ends_us
    assert in_steps == one_by_one[11::12]
