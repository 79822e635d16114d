"""The virtual render clock (`spec.render.clock: virtual`): the same pixels on an idle or a loaded
machine, for the animated pages of tests/fixtures/render_clock/ (CSS animation, setInterval, a
requestAnimationFrame game loop with a per-frame step, performance.now() physics, canvas 2D with
Math.random, WebGL through three.js from the library cache, a page that never idles).

Kept cheap (the CI budget): every page twice on the virtual clock — once idle, once while two busy
processes saturate the CPUs. The full 5 + 5 measurement on both clocks, with how much real-time renders
vary, is benchmarks/render_determinism.py; the comparison with real time is test_render_fidelity.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proctor_jobs.render.page import RenderSettings
from tests.support import require_env

# idle_machine: it sets its own load (idle, then both CPUs saturated) or compares with real time on
# an idle machine, so tests/run runs it alone, after the parallel phase.
pytestmark = [pytest.mark.slow, pytest.mark.idle_machine]

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "render_clock"


@pytest.fixture(scope="module")
def libraries():
    from proctor_jobs.render.farm import headless_shell_path
    from proctor_jobs.render.libcache import LibraryCacheError, ensure_cache

    try:
        headless_shell_path()
    except FileNotFoundError as exc:
        require_env(False, str(exc))
    try:
        return ensure_cache()
    except LibraryCacheError as exc:
        require_env(False, f"library cache unavailable: {exc}")


def pages() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(CORPUS.glob("*.html"))}


async def render_all(corpus: dict[str, str], libraries, clock: str, concurrency: int = 4):
    from proctor_jobs.render.farm import BrowserFarm

    settings = RenderSettings(clock=clock, deadline_s=30.0, width=1280, height=720)
    async with BrowserFarm(concurrency=concurrency, clock=clock) as farm:
        results = await asyncio.gather(*(farm.render(html, libraries, settings) for html in corpus.values()))
    return dict(zip(corpus, results, strict=True))


def digest(result) -> tuple[str, ...]:
    return tuple(hashlib.sha256(png).hexdigest()[:16] for png in result.screenshots)


class Saturate:
    """Busy processes, one per CPU, for the length of a `with` block (ended by their own pids)."""

    def __enter__(self):
        code = "import time\nend = time.time() + 120\nwhile time.time() < end: pass"
        self.procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 2)]
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()


def test_virtual_clock_same_pixels_idle_and_loaded(libraries):
    corpus = pages()
    assert len(corpus) >= 7
    started = time.monotonic()
    idle = asyncio.run(render_all(corpus, libraries, "virtual"))
    with Saturate():
        loaded = asyncio.run(render_all(corpus, libraries, "virtual"))
    virtual_s = time.monotonic() - started
    print(f"\nvirtual: 2 runs of {len(corpus)} pages in {virtual_s:.1f} s")
    for name in corpus:
        a, b = idle[name], loaded[name]
        assert a.status == "ok" and b.status == "ok", (name, a.reason, b.reason)
        # The corpus pages throw nothing: a clock shim that breaks an API (performance.now() once
        # recursed until the stack overflowed) shows here, not only as "identical" broken pixels.
        assert not a.page_errors and not b.page_errors, (name, a.page_errors[:2], b.page_errors[:2])
        assert len(a.screenshots) == 3, (name, len(a.screenshots))
        # 1 + 30 + 1 + 60 + 60 frames for a page that loads in one frame. How many frames pass before
        # Playwright's load event reaches Proctor depends on real time (a known limit: 152 idle, 153
        # loaded for set_interval on this machine), so a page may be that many frames later.
        frames = (a.frames, b.frames)
        assert min(frames) >= 152 and max(frames) <= 155, (name, frames)
        same = digest(a) == digest(b)
        print(f"  {name:16s} virtual: {1 if same else 2} distinct of 2 (idle, loaded), frames {frames}")
        if frames[0] == frames[1]:
            assert same, f"{name}: screenshots differ, idle vs loaded, at the same frame count"


FETCH_PAGE = """<!doctype html><html><body><script>
(async () => {
  const t0 = performance.now();
  const served = await fetch('/data.json'), data = await served.json();
  const missing = await fetch('/missing.txt');
  let blocked = 'resolved';
  try { await fetch('https://example.com/api'); } catch (e) { blocked = e.name; }
  const bytes = Array.from(new Uint8Array(await (await fetch('/bytes.bin')).arrayBuffer()));
  const library = await fetch('https://cdnjs.cloudflare.com/ajax/libs/three.js/r128/three.min.js');
  const head = (await library.text()).length > 100000;
  console.log(JSON.stringify({served: [served.status, served.headers.get('content-type'), data.v],
                              missing: missing.status, blocked, bytes, library: [library.status, head],
                              elapsed: performance.now() - t0}));
})();
</script></body></html>"""


def test_virtual_clock_fetch_answers_what_the_network_layer_does(libraries):
    """On the virtual clock fetch() is answered through a synchronous request (see
    VIRTUAL_TIME_SCRIPT): what the page gets must be what the network layer answers — bodies byte
    for byte, statuses, headers, a refused request as a TypeError — and the page time it takes must
    be the same in two renders (Chromium counts up to 10 ms per request, up to the next frame)."""
    from proctor_jobs.render.farm import BrowserFarm

    extra = {"/data.json": (b'{"v": 42}', "application/json"), "/bytes.bin": (bytes([0, 255, 128, 1]), "x/y")}
    settings = RenderSettings(clock="virtual", screenshots=1, deadline_s=30.0)

    async def render():
        async with BrowserFarm(concurrency=1, clock="virtual") as farm:
            return [await farm.render(FETCH_PAGE, libraries, settings, extra) for _ in "ab"]

    logged = []
    for result in asyncio.run(render()):
        assert result.status == "ok", result.reason
        lines = [m["text"] for m in result.console if m["text"].startswith("{")]
        assert lines, result.console
        logged.append(json.loads(lines[0]))
    first, second = logged
    assert first == second
    assert first["elapsed"] <= 5 * 10
    del first["elapsed"]
    assert first == {
        "served": [200, "application/json", 42],
        "missing": 404,
        "blocked": "TypeError",
        "bytes": [0, 255, 128, 1],
        "library": [200, True],  # a library from the cache, cross-origin (CORS without credentials)
    }


#: Pages whose screenshots tell whether frames were skipped where something ran on them: each logs
#: what it saw to the console too. Quiet page time is run in one grant (VirtualClock.run) only up to the
#: next timer, and never while a frame callback, an animation, an observer or an image is pending.
QUIET_PAGES = {
    "static": "<h1>Static</h1><p>Nothing moves on this page.</p>",
    "timer_starts_a_loop": """<div id=n style="font:40px monospace">0</div><script>
        setTimeout(() => {
          let n = 0;
          const step = () => {
            n++;
            document.getElementById('n').textContent = n;
            requestAnimationFrame(step);
          };
          requestAnimationFrame(step);
        }, 700);</script>""",
    "timer_starts_a_transition": """<style>
        #b{width:50px;height:50px;background:#36c;transition:width 600ms linear}
        #b.wide{width:600px}</style><div id=b></div><script>
        setTimeout(() => document.getElementById('b').classList.add('wide'), 1300);</script>""",
    "interval_reads_the_clock": """<pre id=t style="font:24px monospace"></pre><script>
        setInterval(() => {
          document.getElementById('t').textContent += Math.round(performance.now()) + ' ';
        }, 330);</script>""",
    "timeout_chain": """<div id=c style="font:40px monospace"></div><script>
        let depth = 0;
        const next = () => {
          depth++;
          document.getElementById('c').textContent = depth + '@' + performance.now();
          if (depth < 12) setTimeout(next, depth < 6 ? 0 : 170);
        };
        setTimeout(next, 0);</script>""",
    "observer_reveals": """<style>.card{opacity:0;transition:opacity 400ms}.card.seen{opacity:1}</style>
        <div class=card style="width:300px;height:200px;background:#c33"></div><script>
        const io = new IntersectionObserver(
          es => es.forEach(e => e.isIntersecting && e.target.classList.add('seen')));
        document.querySelectorAll('.card').forEach(c => io.observe(c));</script>""",
    "idle_callback_draws": """<canvas id=k width=300 height=100></canvas><script>
        setTimeout(() => requestIdleCallback(() => {
          const g = document.getElementById('k').getContext('2d');
          g.fillStyle = '#2a2'; g.fillRect(0, 0, 40 + performance.now() / 20, 100);
        }), 900);</script>""",
    "animation_after_load": """<style>@keyframes spin{to{transform:rotate(360deg)}}
        .s{width:80px;height:80px;background:#e90}.s.on{animation:spin 2s linear infinite}</style>
        <div class=s></div><script>
        setTimeout(() => document.querySelector('.s').classList.add('on'), 400);</script>""",
}


def test_quiet_page_time_runs_without_frames_and_shows_the_same_pixels(libraries, monkeypatch):
    """Frames of quiet page time are not begun (a static page costs a few grants instead of 150
    frames), and every capture is what beginning each frame gives: timers that start a frame loop, a
    transition or an animation, a chain of timers, an interval reading the clock, an observer and an
    idle callback."""
    from proctor_jobs.render import page as page_module

    def run(skip: bool):
        monkeypatch.setattr(page_module, "SKIP_QUIET", skip)
        return asyncio.run(render_all(QUIET_PAGES, libraries, "virtual"))

    skipping, stepping = run(True), run(False)
    for name in QUIET_PAGES:
        a, b = skipping[name], stepping[name]
        assert a.status == b.status == "ok", (name, a.reason, b.reason)
        assert not a.page_errors and not b.page_errors, (name, a.page_errors[:2], b.page_errors[:2])
        assert b.frames_skipped == 0
        print(f"  {name:28s} frames {a.frames}, {a.frames_skipped} not begun")
        if a.frames == b.frames:
            assert digest(a) == digest(b), f"{name}: skipping quiet frames changed a capture"
            assert [m["text"] for m in a.console] == [m["text"] for m in b.console], name
    assert skipping["static"].frames_skipped >= 140
    # Quiet stretches are skipped up to a timer, not over it: the pages whose timers fire once or
    # twice are skipped in part too.
    assert skipping["timer_starts_a_transition"].frames_skipped >= 40
    assert skipping["observer_reveals"].frames_skipped == 0  # delivered after a frame: never skipped


#: A timer that works a while before it starts a frame loop (a page building its scene first). Page
#: time stands still while a script runs, so the loop's first frame is the timer's, however long the
#: work takes in real time: the renderer must be asking for frames before the loop asks.
SLOW_START = """<div id=n style="font:40px monospace">0</div><script>
setTimeout(() => {
  const fired = performance.now();
  let x = 0;
  for (let k = 0; k < WORK; k++) x += Math.sqrt(k);
  document.getElementById('n').textContent = Math.round(x);
  requestAnimationFrame((t) => console.log(JSON.stringify({fired, first: t})));
}, 700);</script>"""


@pytest.mark.parametrize("skip", [True, False], ids=["skipping", "stepping"])
def test_a_loop_started_by_a_timer_begins_on_its_frame_however_long_the_timer_works(
    libraries, monkeypatch, skip
):
    """Without Proctor's always-pending frame callback (VIRTUAL_TIME_SCRIPT) the renderer stops asking
    for frames on quiet pages, and a frame begun before its new request arrives is not its: every
    loop below but the one started at once began a frame late (6 renders of 6), and which one won
    depended on real time."""
    from proctor_jobs.render import page as page_module

    monkeypatch.setattr(page_module, "SKIP_QUIET", skip)
    corpus = {f"work_{n}": SLOW_START.replace("WORK", str(n)) for n in (0, 3_000_000, 30_000_000)}
    results = asyncio.run(render_all(corpus, libraries, "virtual", concurrency=3))
    for name, result in results.items():
        assert result.status == "ok", (name, result.reason)
        [line] = [json.loads(m["text"]) for m in result.console if m["text"].startswith("{")]
        assert line == {"fired": 700, "first": 700}, name


STEP_BAR = """<!doctype html><html><body style="margin:0;height:HEIGHTpx">
<div id=bar style="position:absolute;top:10px;left:0;height:20px;width:0;background:#f00"></div>
<script>
let n = 0;
(function step() { n++; document.getElementById('bar').style.width = n + 'px';
                   requestAnimationFrame(step); })();
</script></body></html>"""


def bar_width(png: bytes) -> int:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for x in range(image.width) if image.getpixel((x, 20)) == (255, 0, 0))


def test_a_full_page_capture_shows_the_page_after_the_same_frames_as_a_viewport_capture(libraries):
    """A page taller than the viewport is captured with redraws at the capture's instant (as many as
    the capture takes, which depends on real time); they must not run the page's animation callbacks,
    or its picture is a step or two further than the same page captured within the viewport (it was,
    every time, before redraws held the callbacks back)."""
    corpus = {"short": STEP_BAR.replace("HEIGHT", "600"), "tall": STEP_BAR.replace("HEIGHT", "2400")}
    results = asyncio.run(render_all(corpus, libraries, "virtual", concurrency=2))
    short, tall = results["short"], results["tall"]
    assert short.status == "ok" and tall.status == "ok", (short.reason, tall.reason)
    assert short.frames == tall.frames, (short.frames, tall.frames)
    widths = [(bar_width(a), bar_width(b)) for a, b in zip(short.screenshots, tall.screenshots, strict=True)]
    assert len(widths) == 3 and all(s == t > 0 for s, t in widths), widths
