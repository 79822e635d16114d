"""CPU cost of one frame of the virtual render clock, per process, on a page that does nothing.

`python benchmarks/virtual_frame_cost.py [--frames 600]` loads an empty page on the virtual clock
(`clock: virtual`, Chromium's old headless shell), then runs `--frames` frames the way a render does
between two screenshots (`VirtualClock.frame`: grant the frame's page time, wait for it to pass, begin
an undrawn frame) and prints the CPU each kind of process spent per frame: Chromium's browser,
renderer and GPU processes, Playwright's node driver and this Python. A render at 60 fps runs 151
frames for 3 screenshots, so this is the floor of what an item costs on the virtual clock, whatever
the page does. It also prints the two halves of a frame separately (the page-time grant with its
event, the begin-frame request), so a change to either shows where it landed.

The last line is `RESULT ms_per_frame=<CPU milliseconds per frame, all processes>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from render_throughput import process_kind, process_table  # noqa: E402

PAGE = "<!doctype html><html><body><h1>still</h1></body></html>"


def cpu_by_kind() -> dict[int, tuple[str, float]]:
    """CPU seconds of this process and its descendants, by pid: (kind, seconds)."""
    parents, ticks = process_table()
    used = {pid: t / os.sysconf("SC_CLK_TCK") for pid, t in ticks.items()}
    out, stack = {}, [os.getpid()]
    while stack:
        pid = stack.pop()
        out[pid] = (process_kind(pid), used.get(pid, 0.0))
        stack += [child for child, parent in parents.items() if parent == pid]
    return out


def spent(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    split: dict[str, float] = {}
    for pid, (kind, seconds) in after.items():
        split[kind] = split.get(kind, 0.0) + seconds - before.get(pid, (kind, 0.0))[1]
    return split


async def measure(frames: int) -> float:
    from proctor_jobs.render.farm import BrowserFarm
    from proctor_jobs.render.libcache import ensure_cache
    from proctor_jobs.render.network import PAGE_URL, HermeticRouter
    from proctor_jobs.render.page import VirtualClock, frame_lock
    from proctor_jobs.render.slots import open_slot

    libraries = ensure_cache()
    async with BrowserFarm(concurrency=1, clock="virtual") as farm:
        browser = await farm._ensure_browser()
        slot = await open_slot(browser, 1280, 720, virtual=True)
        slot.router = HermeticRouter(PAGE, libraries)
        page = slot.page
        cdp = await page.context.new_cdp_session(page)
        clock = VirtualClock(cdp, 60.0, frame_lock(browser))
        await clock.start()
        await page.goto(PAGE_URL, wait_until="commit")
        await clock.until(page.wait_for_load_state("load"))
        await clock.run(0.5)

        async def grant() -> None:
            clock._expired.clear()
            await cdp.send(
                "Emulation.setVirtualTimePolicy", {"policy": "pauseIfNetworkFetchesPending", "budget": 1}
            )
            await clock._expired.wait()

        async def begin(index: int) -> None:
            ticks = clock.base + clock.elapsed_ms + index + 1
            await cdp.send(
                "HeadlessExperimental.beginFrame", {"frameTimeTicks": ticks, "noDisplayUpdates": True}
            )

        total = 0.0
        for label in ("frame", "grant", "begin"):
            before, started = cpu_by_kind(), time.monotonic()
            for index in range(frames):
                if label == "frame":
                    await clock.frame()
                elif label == "grant":
                    await grant()
                else:
                    await begin(index)
            wall = time.monotonic() - started
            split = spent(before, cpu_by_kind())
            ms = 1000 * sum(split.values()) / frames
            parts = ", ".join(
                f"{kind} {1000 * s / frames:.2f}"
                for kind, s in sorted(split.items(), key=lambda kv: -kv[1])
                if s > 0
            )
            print(f"{label:5s} {ms:5.2f} CPU-ms per frame ({1000 * wall / frames:.2f} ms wall): {parts}")
            if label == "frame":
                total = ms
        await slot.context.close()
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "jobs"))
    ms = asyncio.run(measure(args.frames))
    print(f"a 3-screenshot render at 60 fps (151 frames): {151 * ms / 1000:.2f} CPU-s in frames alone")
    print(f"RESULT ms_per_frame={ms:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
