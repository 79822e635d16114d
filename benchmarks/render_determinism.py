"""Render determinism: how many different screenshots one page gives on each clock, idle and loaded.

    python benchmarks/render_determinism.py [--runs 5] [--concurrency 4]

The animated pages of tests/fixtures/render_clock/ (CSS animation, setInterval, a requestAnimationFrame
game loop, performance.now() physics, canvas 2D with Math.random, WebGL through three.js, a page that
never idles, a tall page with fixed elements) are rendered `--runs` times on an idle machine and
`--runs` times while busy processes saturate every CPU, on the virtual clock and on the real-time
clock, with the example's settings (1280x720, 3 screenshots 1 s apart). For each page and clock the
script prints how many distinct renders (the three screenshots' hashes together) the 2 x `--runs`
renders gave, and the frame counts of the virtual ones (the load event is seen one to three frames
later on a loaded machine: docs/rendering.md, known limits).

Last line: `RESULT virtual_distinct_max=<n> realtime_distinct_mean=<x>`: the virtual clock's check is 1
for every page whose renders ran the same number of frames (printed per page).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "jobs"), str(ROOT / "operator")]

from tests.integration.test_render_clock import Saturate, digest, pages, render_all  # noqa: E402


def renders(corpus, libraries, clock: str, runs: int, concurrency: int, loaded: bool) -> list[dict]:
    out = []
    for _ in range(runs):
        if loaded:
            with Saturate():
                out.append(asyncio.run(render_all(corpus, libraries, clock, concurrency)))
        else:
            out.append(asyncio.run(render_all(corpus, libraries, clock, concurrency)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="renders per page and clock when idle")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    from proctor_jobs.render.libcache import ensure_cache

    libraries = ensure_cache()
    corpus = pages()
    print(f"{len(corpus)} pages, {args.runs} renders idle + {args.runs} loaded per clock", flush=True)
    found: dict[str, dict[str, list]] = {}
    for clock in ("virtual", "realtime"):
        for loaded in (False, True):
            started = time.monotonic()
            for run in renders(corpus, libraries, clock, args.runs, args.concurrency, loaded):
                for name, result in run.items():
                    found.setdefault(clock, {}).setdefault(name, []).append(result)
            state = "loaded" if loaded else "idle"
            print(f"{clock:8s} {state:6s} {time.monotonic() - started:6.1f} s", flush=True)
    print(f"\n{'page':16s} {'virtual':>8s} {'frames':>18s} {'same frames':>12s} {'realtime':>9s}")
    worst_virtual, realtime_counts = 1, []
    for name in corpus:
        virtual = found["virtual"][name]
        bad = [r for r in virtual + found["realtime"][name] if r.status != "ok" or len(r.screenshots) != 3]
        if bad:
            print(f"{name}: {len(bad)} renders failed or lack screenshots: {[r.reason for r in bad][:3]}")
            return 1
        distinct_virtual = len({digest(r) for r in virtual})
        frames = sorted({r.frames for r in virtual})
        by_frames: dict[int, set] = {}
        for r in virtual:
            by_frames.setdefault(r.frames, set()).add(digest(r))
        same_frames = max(len(d) for d in by_frames.values())  # distinct renders at one frame count
        worst_virtual = max(worst_virtual, same_frames)
        distinct_realtime = len({digest(r) for r in found["realtime"][name]})
        realtime_counts.append(distinct_realtime)
        print(
            f"{name:16s} {distinct_virtual:8d} {','.join(map(str, frames)):>18s} {same_frames:12d} "
            f"{distinct_realtime:9d}"
        )
    total = 2 * args.runs
    print(f"(distinct renders of {total}, idle and loaded; same frames: the most at one frame count)")
    mean = sum(realtime_counts) / len(realtime_counts)
    print(f"RESULT virtual_distinct_max={worst_virtual} realtime_distinct_mean={mean:.1f}")
    return 0 if worst_virtual == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
