"""Render fidelity: do the virtual clock's screenshots show what a real-time render shows?

    python benchmarks/render_fidelity.py [--realtime 5] [--concurrency 2] [--threshold 0.98]
                                         [--pages corpus,example] [--save DIR]

The pages: the animated corpus of tests/fixtures/render_clock/ and the ArtifactsBench example answers
(examples/artifactsbench, extracted with the `fixed` profile, as the example's run renders them).
Every page is rendered once on the virtual clock (`clock: virtual`, 60 fps; deterministic, so once is
enough) and `--realtime` times on the real-time clock (Chromium's own 60 fps), with the example's
settings: 1280x720, 3 full-page screenshots 1 s apart, a 30 s deadline. Real-time renders are what
the virtual clock stands in for *on an idle machine*, so they run `--concurrency` at a time (2 on a
2-core machine: one animated page per core) and the script prints how busy the machine was.

The measure (`ssim`): SSIM (Wang et al. 2004) on greyscale (BT.601 luma, 0-255), an 11x11 Gaussian
window with sigma 1.5, K1 = 0.01, K2 = 0.03 — the reference parameters — averaged over the image. A
virtual screenshot is scored against the same screenshot index of each real-time render and keeps the
best (the closest real-time render: real time is itself a distribution over how many frames the
machine managed); a page's score is its worst screenshot. Screenshots of different sizes (a full-page
capture whose page grew or shrank) are compared on their common top-left area and the rest counts as
0, so a size difference costs its share of the area.

Threshold 0.98: two real-time renders of the same static page give 1.0 (the same pixels), a text
caret or a one-pixel anti-aliasing shift stays above 0.995, while a game or simulation one frame
apart, a chart mid-animation or a moved element falls below it (the figures in docs/rendering.md).

A page that misses is either listed in KNOWN_DIFFERENCES with the reason it legitimately differs (it
shows wall-clock time, unseeded randomness the real-time renders disagree on, ...) or is a fidelity
bug; the script also prints how well the real-time renders agree among themselves (`rt-self`: the
best SSIM between two of them), which tells a page that varies in real time from one the virtual
clock gets wrong. Last line: `RESULT pages=<n> matched=<n> known=<n> unexplained=<n> min_ssim=<x>`;
`unexplained=0` is the check.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "render_clock"
EXAMPLE_ANSWERS = ROOT / "examples" / "artifactsbench" / "data" / "answers.jsonl"
THRESHOLD = 0.98

#: Example answers that hang or spin until their deadline (endless loop, alert loop, 200 MB DOM): a
#: busy loop takes a whole core for the deadline, so no real-time render beside it is "idle". They are
#: rendered apart, one at a time (`--hostile`).
HANGS = {"1510", "61", "1047"}

#: Pages whose screenshots legitimately differ from real time, with the reason (see docs/rendering.md).
#: Each was looked at (the PNGs): real time disagrees with itself about as much (`rt-self`), or it
#: charges the machine's own work to the page's animation, which page time does not (`1767`).
_RANDOM = "unseeded Math.random (seeded on the virtual clock): every real-time render draws other content"
KNOWN_DIFFERENCES: dict[str, str] = {
    "canvas_2d": f"{_RANDOM} (the 'random 0.xxxx' text), and a rotation driven by frame timestamps",
    "raf_game_loop": "moves a fixed step per frame: real time drops frames as the machine is busy",
    "10": f"{_RANDOM} (the initial Game of Life grid)",
    "373": f"{_RANDOM} (the star field), planets turning on wall time",
    "376": f"{_RANDOM} (the star field), orbits on wall time",
    "397": "p5.js orbit on wall time: real-time renders differ by their capture latency",
    "890": f"{_RANDOM} (the heart's particles)",
    "950": f"{_RANDOM} (enemy spawns) and sprites moving every frame",
    "1394": "PixiJS ticker animation on wall time: real-time renders differ by their capture latency",
    "1466": "a card dealt every 25 ms: real time's first capture lands 44-63 ms later in page time (577-596 "
    "ms: its load and capture take real time; 533 on the virtual clock), a card or two further into the deal",
    "1767": "ECharts' intro animation starts once its 1 MB script has run: 138-339 ms into the page in real "
    "time on 2 cores, at 10 ms in page time (running a script takes none); real time captures at 614-757 ms, "
    "page time at 533: real time shows the 1 s intro less far along, the more so the slower the machine",
}


# --- the measure ---------------------------------------------------------------------------------

_SIGMA, _RADIUS, _K1, _K2, _L = 1.5, 5, 0.01, 0.03, 255.0
_C1, _C2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
_KERNEL = np.exp(-0.5 * (np.arange(-_RADIUS, _RADIUS + 1) / _SIGMA) ** 2)
_KERNEL = (_KERNEL / _KERNEL.sum()).astype(np.float64)


def grey(png: bytes) -> np.ndarray:
    """A screenshot as BT.601 luma in 0..255 (float64), alpha composited on white."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image = image.convert("RGBA")
        flat = Image.new("RGBA", image.size, (255, 255, 255, 255))
        flat.alpha_composite(image)
        rgb = np.asarray(flat.convert("RGB"), dtype=np.float64)
    return rgb @ np.array([0.299, 0.587, 0.114])


def _blur(x: np.ndarray) -> np.ndarray:
    """The Gaussian window's weighted mean at every position where it fits ("valid" mode)."""
    n = 2 * _RADIUS + 1
    rows = sum(_KERNEL[k] * x[k : x.shape[0] - n + 1 + k, :] for k in range(n))
    return sum(_KERNEL[k] * rows[:, k : x.shape[1] - n + 1 + k] for k in range(n))


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu_a, mu_b = _blur(a), _blur(b)
    var_a = _blur(a * a) - mu_a * mu_a
    var_b = _blur(b * b) - mu_b * mu_b
    cov = _blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / (
        (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    )


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two greyscale images of the same shape (valid windows only).

    Exact shortcut: a window over identical pixels scores 1, so only the bounding box of the pixels
    that differ (grown by the window's radius) is computed; every other window counts as 1."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    n = 2 * _RADIUS + 1
    if a.shape[0] < n or a.shape[1] < n:
        return 1.0 if np.array_equal(a, b) else 0.0
    windows = (a.shape[0] - n + 1) * (a.shape[1] - n + 1)
    diff = np.nonzero(a != b)
    if not diff[0].size:
        return 1.0
    top, bottom = max(0, diff[0].min() - 2 * _RADIUS), min(a.shape[0], diff[0].max() + 2 * _RADIUS + 1)
    left, right = max(0, diff[1].min() - 2 * _RADIUS), min(a.shape[1], diff[1].max() + 2 * _RADIUS + 1)
    local = _ssim_map(a[top:bottom, left:right], b[top:bottom, left:right])
    return float((local.sum() + (windows - local.size)) / windows)


def similarity(png_a: bytes, png_b: bytes, cache: dict | None = None) -> float:
    """SSIM of two screenshots; different sizes compare their common area, the rest counts 0."""
    if png_a == png_b:
        return 1.0
    a, b = _decoded(png_a, cache), _decoded(png_b, cache)
    if a.shape == b.shape:
        return ssim(a, b)
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    union = max(a.shape[0], b.shape[0]) * max(a.shape[1], b.shape[1])
    return ssim(a[:h, :w], b[:h, :w]) * (h * w) / union


def _decoded(png: bytes, cache: dict | None) -> np.ndarray:
    if cache is None:
        return grey(png)
    key = hashlib.sha256(png).digest()
    if key not in cache:
        cache[key] = grey(png)
    return cache[key]


# --- the comparison ------------------------------------------------------------------------------


@dataclass
class Row:
    """One page: its virtual screenshots against the closest real-time render, shot by shot."""

    name: str
    shots: list[float] = field(default_factory=list)  # best SSIM per screenshot index
    best: list[int] = field(default_factory=list)  # which real-time render was closest
    rt_self: float | None = None  # best agreement between two real-time renders (worst shot)
    problem: str | None = None  # why the page cannot be scored (status, screenshot count)
    sizes: str = ""
    virtual_errors: list[str] = field(default_factory=list)  # page errors no real-time render raised

    @property
    def score(self) -> float:
        return min(self.shots) if self.shots else 0.0


def compare(name: str, virtual, realtime: list, cache: dict | None = None) -> Row:
    """`virtual`: a PageResult; `realtime`: PageResults of the same page on the real-time clock."""
    row = Row(name)
    # A script error only the virtual clock raises is a fidelity bug however few pixels it costs (a
    # page whose animation never starts can still score 0.997 on a mostly static screen).
    seen = {e["message"] for r in realtime for e in r.page_errors}
    row.virtual_errors = sorted({e["message"] for e in virtual.page_errors} - seen)
    usable = [r for r in realtime if len(r.screenshots) == len(virtual.screenshots)]
    if not virtual.screenshots and not any(r.screenshots for r in realtime):
        row.shots = [1.0]  # both clocks record the same outcome: nothing to see
        row.sizes = f"none ({virtual.status})"
        return row
    if not usable:
        counts = sorted({len(r.screenshots) for r in realtime})
        row.problem = (
            f"{len(virtual.screenshots)} virtual screenshots ({virtual.status}), real time took {counts}"
        )
        return row
    for index, png in enumerate(virtual.screenshots):
        scores = [similarity(png, r.screenshots[index], cache) for r in usable]
        row.shots.append(max(scores))
        row.best.append(int(np.argmax(scores)))
    if len(usable) > 1:
        row.rt_self = max(
            min(similarity(a.screenshots[i], b.screenshots[i], cache) for i in range(len(a.screenshots)))
            for k, a in enumerate(usable)
            for b in usable[k + 1 :]
        )
    row.sizes = " ".join(_size(png) for png in virtual.screenshots[-1:])
    return row


def _size(png: bytes) -> str:
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return f"{width}x{height}"


# --- the pages and the renders -------------------------------------------------------------------


def load_pages(which: set[str], hostile: bool) -> dict[str, str]:
    from proctor_jobs.render.extract import extract

    pages: dict[str, str] = {}
    if "corpus" in which:
        pages.update({p.stem: p.read_text() for p in sorted(CORPUS.glob("*.html"))})
    if "example" in which:
        for line in EXAMPLE_ANSWERS.read_text().splitlines():
            row = json.loads(line)
            if str(row["index"]) in HANGS and not hostile:
                continue
            extraction = extract(row["answer"], "fixed")
            if extraction.html is not None:
                pages[str(row["index"])] = extraction.html
    return pages


def settings(clock: str, deadline_s: float = 30.0):
    from proctor_jobs.render.page import RenderSettings

    return RenderSettings(
        screenshots=3, interval_s=1.0, width=1280, height=720, deadline_s=deadline_s, clock=clock
    )


async def render(pages: dict[str, str], clock: str, concurrency: int, deadline_s: float = 30.0) -> dict:
    """Every page once on `clock`, `concurrency` at a time in one browser: name -> PageResult."""
    from proctor_jobs.render.farm import BrowserFarm
    from proctor_jobs.render.libcache import ensure_cache

    libraries = ensure_cache()
    chosen = settings(clock, deadline_s)
    async with BrowserFarm(concurrency=concurrency, clock=clock) as farm:
        results = await asyncio.gather(*(farm.render(html, libraries, chosen) for html in pages.values()))
    return dict(zip(pages, results, strict=True))


def machine_busy() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK"), time.monotonic()


def busy_since(mark: tuple[float, float]) -> float:
    """Average number of busy CPUs since `mark` (all processes on the machine, ours included)."""
    busy, now = machine_busy()
    return (busy - mark[0]) / max(1e-6, now - mark[1])


def report(rows: list[Row], threshold: float, out=sys.stdout) -> tuple[int, int, int]:
    """Prints one line per page and every miss with its reason; returns (matched, known, unexplained)."""
    matched = known = unexplained = 0
    print(f"{'page':18s} {'min SSIM':>8s}  per shot               rt-self  size", file=out)
    for row in rows:
        shots = " ".join(f"{s:.4f}" for s in row.shots)
        rt_self = f"{row.rt_self:.4f}" if row.rt_self is not None else "  -   "
        print(f"{row.name:18s} {row.score:8.4f}  {shots:22s} {rt_self}   {row.sizes}", file=out)
    print(file=out)
    for row in rows:
        if row.virtual_errors and not row.problem:
            row.problem = f"page errors only on the virtual clock: {row.virtual_errors[:3]}"
        if row.problem is None and row.score >= threshold:
            matched += 1
            continue
        reason = KNOWN_DIFFERENCES.get(row.name)
        why = row.problem or _diagnose(row, threshold)
        if reason:
            known += 1
            print(f"MISS (known) {row.name}: {row.score:.4f} — {reason} [{why}]", file=out)
        else:
            unexplained += 1
            print(f"MISS {row.name}: {row.score:.4f} — {why}", file=out)
    return matched, known, unexplained


def _diagnose(row: Row, threshold: float) -> str:
    worst = int(np.argmin(row.shots))
    if row.rt_self is not None and row.rt_self < threshold:
        return (
            f"screenshot {worst}; the real-time renders disagree among themselves too "
            f"(best pair {row.rt_self:.4f}): the page varies in real time"
        )
    return f"screenshot {worst}; the real-time renders agree ({row.rt_self}): a virtual-clock difference"


def save(directory: Path, virtual: dict, realtime: list[dict]) -> None:
    for name, result in virtual.items():
        for index, png in enumerate(result.screenshots):
            (directory / f"{name}.v.{index}.png").write_bytes(png)
        for run, renders in enumerate(realtime):
            for index, png in enumerate(renders[name].screenshots):
                (directory / f"{name}.r{run}.{index}.png").write_bytes(png)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realtime", type=int, default=5, help="real-time renders per page")
    parser.add_argument("--concurrency", type=int, default=max(1, os.cpu_count() or 2))
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--pages", default="corpus,example", help="corpus, example or both")
    parser.add_argument("--only", default="", help="comma-separated page names")
    parser.add_argument("--no-hostile", action="store_true", help="leave out the pages that hang")
    parser.add_argument("--save", type=Path, help="write every screenshot here")
    args = parser.parse_args()

    pages = load_pages(set(args.pages.split(",")), hostile=False)
    if args.only:
        pages = {k: v for k, v in pages.items() if k in args.only.split(",")}
    hostile = (
        {} if args.no_hostile else {k: v for k, v in load_pages({"example"}, True).items() if k in HANGS}
    )
    if args.only:
        hostile = {k: v for k, v in hostile.items() if k in args.only.split(",")}
    print(
        f"{len(pages)} pages (+{len(hostile)} that hang), {args.realtime} real-time renders each, "
        f"concurrency {args.concurrency}, load average at start {os.getloadavg()[0]:.2f}"
    )

    started = time.monotonic()
    virtual = asyncio.run(render(pages, "virtual", args.concurrency))
    print(f"virtual: {time.monotonic() - started:.1f} s")
    realtime = []
    for run in range(args.realtime):
        mark = machine_busy()
        t0 = time.monotonic()
        realtime.append(asyncio.run(render(pages, "realtime", args.concurrency)))
        print(
            f"real time #{run + 1}: {time.monotonic() - t0:.1f} s, {busy_since(mark):.2f} CPUs busy "
            f"(machine-wide, this render included)"
        )
    if hostile:
        # One at a time with a short deadline: they hold a core (or nothing at all) until it passes.
        t0 = time.monotonic()
        virtual.update(asyncio.run(render(hostile, "virtual", 1, deadline_s=10.0)))
        for renders in realtime:
            renders.update(asyncio.run(render(hostile, "realtime", 1, deadline_s=10.0)))
        pages.update(hostile)
        print(f"hanging pages (10 s deadline): {time.monotonic() - t0:.1f} s")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        save(args.save, virtual, realtime)

    cache: dict = {}
    rows = [compare(name, virtual[name], [r[name] for r in realtime], cache) for name in pages]
    print()
    matched, known, unexplained = report(rows, args.threshold)
    lowest = min(row.score for row in rows)
    print(
        f"RESULT pages={len(rows)} matched={matched} known={known} unexplained={unexplained} "
        f"min_ssim={lowest:.4f} threshold={args.threshold}"
    )
    return 0 if unexplained == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
