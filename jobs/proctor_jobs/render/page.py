"""Render one page in its own browser context: load, wait, interact, take the screenshots.

Everything a hostile page can do is bounded here: dialogs never block (the guard script answers
them like a dismissal), `window.open` opens nothing, popups are closed, navigations and reloads are
answered with 204 by the router, the whole render has a deadline, a page that stops responding
(an infinite loop) or crashes (a 200 MB DOM) ends the render with the screenshots taken so far.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from proctor_jobs.render.network import PAGE_URL, HermeticRouter

#: Runs before any script of the page, in every frame.
GUARD_SCRIPT = r"""
(() => {
  const counts = {dialogs: 0, opens: 0};
  const define = (name, fn) => {
    try { Object.defineProperty(window, name, {value: fn, writable: true, configurable: true}); } catch (e) {}
  };
  // Dismissed, as Playwright does by default and as the original harness saw them.
  define('alert', function () { counts.dialogs++; });
  define('confirm', function () { counts.dialogs++; return false; });
  define('prompt', function () { counts.dialogs++; return null; });
  define('print', function () {});
  define('open', function () { counts.opens++; return null; });
  // Peer connections bypass request interception; a render never needs one.
  for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel']) {
    try { Object.defineProperty(window, name, {value: undefined, configurable: true}); } catch (e) {}
  }
  try { Object.defineProperty(window, '__proctorCounts', {value: counts}); } catch (e) {}
})();
"""

#: Runs before any script of the page when the clock is virtual. Page time is then the same in every
#: run, except for two things this script fixes: Chromium coarsens performance.now() and
#: requestAnimationFrame timestamps to 0.1 ms with a random per-process threshold (the same virtual
#: instant reads 16.6 or 16.7 in two browsers; the virtual clock's instants are whole milliseconds, so
#: rounding gives every browser the same value), and Math.random is seeded (a fixed sequence per page).
VIRTUAL_TIME_SCRIPT = r"""
(() => {
  // What the virtual clock asks before it lets page time run without frames (VirtualClock.run):
  // whether anything of the page runs on frames, and how long until its next timer is due.
  const quiet = {frames: new Set(), idle: new Set(), due: new Map(), opaque: false};
  // Redraws (VirtualClock.redraw) run no callback of the page: each one pending is put off to the
  // next frame, under the same id (`later` maps it to the native id that now stands for it).
  const hold = {on: false}, later = new Map();
  Object.defineProperty(window, '__proctorHold', {value: (on) => { hold.on = !!on; }});
  try {
    const exact = window.performance.now.bind(window.performance);
    const define = (target, name, value) =>
      Object.defineProperty(target, name, {value, writable: true, configurable: true});
    const car = window.cancelAnimationFrame.bind(window);
    define(window, 'cancelAnimationFrame', function cancelAnimationFrame(id) {
      quiet.frames.delete(id);
      const native = later.has(id) ? later.get(id) : id;
      later.delete(id);
      return car(native);
    });
    const ric = window.requestIdleCallback.bind(window), cic = window.cancelIdleCallback.bind(window);
    define(window, 'requestIdleCallback', function requestIdleCallback(cb, options) {
      let id;
      const run = typeof cb === 'function' ? (d) => { quiet.idle.delete(id); cb.call(window, d); } : cb;
      id = ric(run, options);
      quiet.idle.add(id);
      return id;
    });
    define(window, 'cancelIdleCallback', function cancelIdleCallback(id) {
      quiet.idle.delete(id);
      return cic(id);
    });
    // A timer's due time is never later than when Chromium runs it (it clamps and aligns later only).
    const due = (delay) => { const d = Number(delay); return exact() + (d > 0 ? d : 0); };
    const st = window.setTimeout, si = window.setInterval;
    const ct = window.clearTimeout, ci = window.clearInterval;
    define(window, 'setTimeout', function setTimeout(fn, delay, ...args) {
      if (typeof fn !== 'function') { quiet.opaque = true; return st.call(window, fn, delay, ...args); }
      let id;
      const run = function () { quiet.due.delete(id); return fn.apply(this, arguments); };
      id = st.call(window, run, delay, ...args);
      quiet.due.set(id, due(delay));
      return id;
    });
    define(window, 'setInterval', function setInterval(fn, delay, ...args) {
      if (typeof fn !== 'function') { quiet.opaque = true; return si.call(window, fn, delay, ...args); }
      let id;
      id = si.call(window, function () {
        if (quiet.due.has(id)) quiet.due.set(id, due(delay));
        return fn.apply(this, arguments);
      }, delay, ...args);
      quiet.due.set(id, due(delay));
      return id;
    });
    define(window, 'clearTimeout', function clearTimeout(id) {
      quiet.due.delete(id);
      return ct.call(window, id);
    });
    define(window, 'clearInterval', function clearInterval(id) {
      quiet.due.delete(id);
      return ci.call(window, id);
    });
    // What runs on its own schedule or is delivered after a frame: never skipped over.
    for (const name of ['Worker', 'SharedWorker', 'WebSocket', 'EventSource', 'IntersectionObserver',
                        'ResizeObserver', 'AudioContext', 'webkitAudioContext', 'MediaRecorder']) {
      const native = window[name];
      if (typeof native !== 'function') continue;
      define(window, name, new Proxy(native, {construct(target, args, newTarget) {
        quiet.opaque = true;
        return Reflect.construct(target, args, newTarget);
      }}));
    }
    const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
    define(XMLHttpRequest.prototype, 'open', function (method, url, async) {
      this.__proctorAsync = arguments.length < 3 || !!async;
      return open.apply(this, arguments);
    });
    define(XMLHttpRequest.prototype, 'send', function () {
      if (this.__proctorAsync) quiet.opaque = true;  // its events come when the answer does
      return send.apply(this, arguments);
    });
    const busy = 'marquee, video, audio, animate, animateTransform, animateMotion, set, iframe, frame, '
                 + 'object, embed';
    Object.defineProperty(window, '__proctorQuiet', {value: () => {
      if (quiet.opaque || quiet.frames.size || quiet.idle.size) return -1;
      if (document.readyState !== 'complete' || window.frames.length) return -1;
      if (document.fonts && document.fonts.status !== 'loaded') return -1;
      if (document.querySelector(busy)) return -1;
      for (const image of document.images) if (!image.complete) return -1;
      for (const animation of document.getAnimations()) {
        if (animation.pending || animation.playState === 'running') return -1;
      }
      let next = Infinity;
      for (const at of quiet.due.values()) next = Math.min(next, at);
      return next === Infinity ? 1e9 : Math.max(0, next - exact());
    }});
  } catch (e) { quiet.opaque = true; }
  try {
    // (The wrapper must not be a function expression named `now`: that name would shadow `exact`
    // inside it and recurse until the stack overflows.)
    const perf = window.performance, exact = perf.now.bind(perf);
    Object.defineProperty(perf, 'now', {value: function now() { return Math.round(exact()); },
                                        writable: true, configurable: true});
    const raf = window.requestAnimationFrame.bind(window);
    // A frame callback of its own, always pending, keeps the renderer's compositor asking for frames.
    // One that asks for none after quiet frames misses a frame begun before its new request reaches
    // the display compositor: a loop started by a timer due at the frame's instant then began a frame
    // late whenever the timer worked a while first (real time deciding page time).
    const keep = () => raf(keep);
    raf(keep);
    Object.defineProperty(window, 'requestAnimationFrame', {
      value: function requestAnimationFrame(cb) {
        let id;
        const run = typeof cb === 'function' ? (t) => {
          if (hold.on) { later.set(id, raf(run)); return; }
          quiet.frames.delete(id);
          later.delete(id);
          cb.call(window, Math.round(t));
        } : cb;
        id = raf(run);
        quiet.frames.add(id);
        return id;
      }, writable: true, configurable: true});
    let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = 1;  // sfc32, a fixed seed
    Object.defineProperty(Math, 'random', {value: function random() {
      a |= 0; b |= 0; c |= 0; d |= 0;
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0; a = b ^ (b >>> 9); b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11); c = (c + t) | 0;
      return (t >>> 0) / 4294967296;
    }, writable: true, configurable: true});
  } catch (e) { quiet.opaque = true; }
  // fetch() is answered at a page time that does not depend on real time. Chromium's pause of
  // virtual time for a request in flight does not hold reliably: measured, the same refused fetch
  // settled 0, 7 or 10 ms of page time after it started, depending on when the answer arrived in
  // real time. A synchronous request blocks the page's thread, and page time cannot advance while
  // it is blocked, so the answer is there before any timer or frame runs. Only requests whose body
  // is known at once (none, a string, URLSearchParams) go this way; others keep the native fetch.
  try {
    const nativeFetch = window.fetch, XHR = window.XMLHttpRequest;
    const nullBody = new Set([101, 103, 204, 205, 304]);
    const answer = (input, init) => {
      const request = new Request(input, init);
      const body = init && init.body;
      if (body != null && typeof body !== 'string' && !(body instanceof URLSearchParams)) return null;
      if (body == null && input instanceof Request && input.body !== null) return null;  // its own body
      if (request.signal && request.signal.aborted) return null;
      const xhr = new XHR();
      xhr.open(request.method, request.url, false);
      xhr.overrideMimeType('text/plain; charset=x-user-defined');  // the bytes as they came
      request.headers.forEach((value, name) => { try { xhr.setRequestHeader(name, value); } catch (e) {} });
      xhr.withCredentials = request.credentials === 'include';  // fetch's default: cookies same-origin only
      const failed = () => Promise.reject(new TypeError('Failed to fetch'));
      try { xhr.send(body == null ? null : String(body)); } catch (e) { return failed(); }
      if (!xhr.status) return failed();
      const headers = new Headers();
      for (const line of xhr.getAllResponseHeaders().trim().split(/\r?\n/)) {
        const at = line.indexOf(':');
        if (at <= 0) continue;
        try { headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim()); } catch (e) {}
      }
      const text = xhr.responseText || '', bytes = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
      const status = xhr.status < 200 || xhr.status > 599 ? 200 : xhr.status;
      return Promise.resolve(new Response(nullBody.has(status) || request.method === 'HEAD' ? null : bytes,
                                          {status, statusText: xhr.statusText, headers}));
    };
    Object.defineProperty(window, 'fetch', {value: function fetch(input, init) {
      let settled = null;
      try { settled = answer(input, init); } catch (e) { return Promise.reject(e); }
      return settled || nativeFetch.call(window, input, init);
    }, writable: true, configurable: true});
  } catch (e) {}
})();
"""
#: The per-script generic fonts Debian's `chromium` takes from Chrome's font settings and the old
#: headless shell lacks (it falls back to Liberation for `sans-serif` in a `lang="zh-CN"` page, so the
#: Latin text and line heights of CJK pages differed): read with CSS.getPlatformFontsForNode from
#: `chromium` with fonts-noto-cjk; only these four scripts differ.
CJK_FONT_FAMILIES = [
    {"script": script, "fontFamilies": {"standard": sans, "sansSerif": sans, "serif": serif, **more}}
    for script, sans, serif, more in (
        ("Hans", "Noto Sans CJK SC", "Noto Serif CJK SC", {}),
        ("Hant", "Noto Sans CJK TC", "Noto Serif CJK TC", {}),
        ("Jpan", "Noto Sans CJK JP", "Noto Serif CJK JP", {"fixed": "Noto Sans Mono CJK JP"}),
        ("Hang", "Noto Sans CJK KR", "Noto Serif CJK KR", {}),
    )
]
#: Date.now() on the virtual clock starts here (2026-01-01T00:00:00Z) in every render.
VIRTUAL_EPOCH_S = 1_767_225_600
#: On the virtual clock, the quiet period after the load event that stands in for Playwright's
#: network idle (500 ms without requests): the page runs this long before the first screenshot.
VIRTUAL_SETTLE_S = 0.5

#: Frames run one by one after the page was found busy, before it is asked again.
BUSY_STRIDE = 10
#: Frames always begun after the load event before any is skipped: the first frames of a document
#: set up its compositing, and an animation started later then starts a frame later when they were
#: skipped (measured).
SETTLE_FRAMES = 3
#: How much earlier than the page's own clock says a timer is taken to be due (ms).
QUIET_MARGIN_MS = 2.0
#: PROCTOR_VIRTUAL_SKIP=0 begins every frame of the virtual clock (for comparison).
SKIP_QUIET = os.environ.get("PROCTOR_VIRTUAL_SKIP", "1") != "0"
#: Each grant of page time ends a few microseconds after its frame's instant: frame k at instant + (k
#: mod GRANT_OFFSET_CYCLE) + 1 µs. A grant that ended exactly when a timer was due let Chromium pause
#: page time before or after running that timer depending on real time (a loop started by a timer due
#: at 700 ms began at 717 in about 3% of busy renders). A timer is due at an instant, or at an earlier
#: frame's offset plus whole milliseconds, so it falls strictly inside a grant and runs before the frame
#: unless it was set exactly GRANT_OFFSET_CYCLE frames (a multiple of 4.2 s at 60 fps) before. The
#: offset stays below 0.3 ms: performance.now() (coarsened to 0.1 ms, then rounded by
#: VIRTUAL_TIME_SCRIPT) and Date.now() still read the frame's whole-millisecond instant.
GRANT_OFFSET_CYCLE = 250
QUIET_PROBE = "typeof window.__proctorQuiet === 'function' ? window.__proctorQuiet() : -1"

SIZE_SCRIPT = (
    "() => { const d = document.documentElement, b = document.body;"
    " return [Math.max(d ? d.scrollWidth : 0, b ? b.scrollWidth : 0),"
    " Math.max(d ? d.scrollHeight : 0, b ? b.scrollHeight : 0)]; }"
)

COUNTS_SCRIPT = "() => window.__proctorCounts || {}"
#: How long the load event is awaited before the document is asked whether it is complete anyway.
LOAD_CHECK_S = 1.0
MAX_MESSAGES = 300
#: Chromium's fast PNG encoder: the same pixels for about a sixth less CPU per rendered page, in files
#: about twice as large. On by default (a render farm is CPU-bound; storage is cheap);
#: PROCTOR_FAST_PNG=0 writes compact PNGs.
FAST_PNG = os.environ.get("PROCTOR_FAST_PNG", "1") != "0"


@dataclass
class RenderSettings:
    screenshots: int = 3
    interval_s: float = 1.0
    width: int = 1280
    height: int = 720
    full_page: bool = True
    max_page_height: int = 8000
    max_page_width: int = 2560  # full-page screenshots are cut here too (twice the default viewport)
    deadline_s: float = 30.0
    network_idle_s: float = 10.0  # longest wait for network idle (the original waits up to 600 s)
    interaction: list[dict[str, Any]] = field(default_factory=list)
    clock: str = "realtime"  # realtime | virtual (see VirtualClock)
    fps: float = 60.0  # frames per second of the virtual clock

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RenderSettings:
        viewport = config.get("viewport") or {}
        return cls(
            screenshots=int(config.get("screenshots", 3)),
            interval_s=float(config.get("interval_s", 1.0)),
            width=int(viewport.get("width", 1280)),
            height=int(viewport.get("height", 720)),
            full_page=bool(config.get("full_page", True)),
            max_page_height=int(config.get("max_page_height", 8000)),
            max_page_width=int(config.get("max_page_width", 2560)),
            deadline_s=float(config.get("deadline_s", 30.0)),
            network_idle_s=float(config.get("network_idle_s", 10.0)),
            interaction=list(config.get("interaction") or []),
            clock=str(config.get("clock") or "realtime"),
            fps=float(config.get("fps", 60.0)),
        )


@dataclass
class PageResult:
    status: str = "ok"  # ok | timeout | crashed | error
    reason: str | None = None
    screenshots: list[bytes] = field(default_factory=list)
    console: list[dict[str, Any]] = field(default_factory=list)
    console_total: int = 0
    page_errors: list[dict[str, Any]] = field(default_factory=list)
    page_errors_total: int = 0
    dialogs: int = 0
    popups: int = 0
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    page_height: int | None = None
    page_width: int | None = None
    page_counts: dict[str, int] | None = None  # the guard's counts, as last read from the page
    network: Any = None  # NetworkLog
    wedged: bool = False  # the browser could not close the context
    infrastructure: bool = False  # the failure is the browser's, not the page's (never cached)
    frames: int | None = None  # animation frames run on the virtual clock (None: real time)
    frames_skipped: int | None = None  # of those, frames of quiet page time not begun (VirtualClock.run)

    @property
    def console_errors(self) -> int:
        return sum(1 for m in self.console if m.get("type") == "error")


class _Clock:
    def __init__(self, deadline_s: float, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.deadline = self.start + deadline_s

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def ms(self, cap_s: float | None = None) -> float:
        left = self.remaining() if cap_s is None else min(self.remaining(), cap_s)
        return max(1.0, left * 1000)

    def mark(self) -> float:
        return round(time.monotonic() - self.start, 3)


async def new_context(browser, width: int, height: int):
    """A fresh browser context as every render sees it: the viewport at scale 1, no service
    workers or downloads, one locale and time zone (the same pixels on every machine)."""
    return await browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        service_workers="block",
        locale="en-US",
        timezone_id="UTC",
        accept_downloads=False,
    )


async def _open_context(browser, router: HermeticRouter, width: int, height: int):
    context = await new_context(browser, width, height)
    await context.add_init_script(GUARD_SCRIPT)
    await context.route("**/*", router.handle_route)
    with contextlib.suppress(Exception):  # WebSocket routing needs Playwright >= 1.48
        await context.route_web_socket("**/*", router.handle_websocket)
    return context


async def _close_context(context, result: PageResult) -> None:
    try:
        await asyncio.wait_for(context.close(), 10)
    except Exception as exc:
        # The browser is wedged; the farm replaces it before the next render.
        result.wedged = True
        result.notes.append(f"closing the page's context failed ({type(exc).__name__}); browser replaced")


async def capture_value(
    browser, html: str, libraries, deadline_s: float, width: int, height: int, extra=None
) -> tuple[Any, PageResult]:
    """Load a page that computes something (e.g. draws an Excalidraw scene) and return the value
    it stores in `window.__proctorResult`, waiting for it up to the deadline."""
    result = PageResult()
    router = HermeticRouter(html, libraries, extra)
    result.network = router.log
    clock = _Clock(deadline_s)
    context = await _open_context(browser, router, width, height)
    watch = Watch(result)
    crashed = watch.crashed
    value = None
    try:
        page = await context.new_page()
        _watch(page, context, watch)
        await _race(page.goto(PAGE_URL, wait_until="load", timeout=clock.ms()), crashed, clock.remaining())
        handle = page.wait_for_function("() => window.__proctorResult !== undefined", timeout=clock.ms())
        await _race(handle, crashed, clock.remaining())
        value = await _race(page.evaluate("() => window.__proctorResult"), crashed, clock.remaining())
    except PageCrashed:
        result.status, result.reason = "crashed", "the page crashed"
    except (TimeoutError, Exception) as exc:
        timed_out = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
        result.status = "timeout" if timed_out else "error"
        result.reason = (
            f"no result within {deadline_s:g} s"
            if timed_out
            else f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        )
    finally:
        result.timings["total_s"] = clock.mark()
        await _close_context(context, result)
    return value, result


_BACKGROUND: set[asyncio.Future] = set()  # keeps fire-and-forget tasks referenced until they finish


def _later(coro) -> None:
    task = asyncio.ensure_future(_quietly(coro))
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


class Watch:
    """Where a page's events go: the result of the item being rendered in it now (a reused page
    serves one item after another; events between items go nowhere)."""

    def __init__(self, result: PageResult | None = None) -> None:
        self.result = result
        self.crashed = asyncio.Event()
        self.opening = False  # the slot is opening its own next page (not a popup)


def _watch(page, context, watch: Watch) -> None:
    _watch_page(page, watch)

    def on_popup(popup) -> None:
        if watch.opening:
            return
        if watch.result is not None:
            watch.result.popups += 1
        _later(popup.close())

    context.on("page", on_popup)


def _watch_page(page, watch: Watch) -> None:
    def on_console(message) -> None:
        result = watch.result
        if result is None:
            return
        result.console_total += 1
        if len(result.console) < MAX_MESSAGES:
            entry = {"type": message.type, "text": message.text[:2000]}
            with contextlib.suppress(Exception):
                location = message.location
                if location and location.get("url"):
                    entry["location"] = f"{location.get('url')}:{location.get('lineNumber')}"
            result.console.append(entry)

    def on_error(error) -> None:
        result = watch.result
        if result is None:
            return
        result.page_errors_total += 1
        if len(result.page_errors) < MAX_MESSAGES:
            result.page_errors.append({"message": str(error)[:2000]})

    def on_dialog(dialog) -> None:  # only reached when a page restores a native dialog function
        if watch.result is not None:
            watch.result.dialogs += 1
        # Leaving the page must never be vetoed; everything else is dismissed.
        _later(dialog.accept() if dialog.type == "beforeunload" else dialog.dismiss())

    def on_crash(_page) -> None:
        watch.crashed.set()

    page.on("console", on_console)
    page.on("pageerror", on_error)
    page.on("dialog", on_dialog)
    page.on("crash", on_crash)


async def _quietly(coro) -> None:
    with contextlib.suppress(Exception):
        await coro


async def _settle(task: asyncio.Future | None) -> None:
    """Leave nothing of `task` behind: cancel it and wait for its end if it still runs, else mark its
    failure as seen (asyncio would log an unretrieved one as "Task exception was never retrieved")."""
    if task is None:
        return
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    elif not task.cancelled():
        task.exception()


async def _race(coro, crashed: asyncio.Event, timeout_s: float):
    """Await `coro` unless the page crashes or `timeout_s` passes first."""
    task = asyncio.ensure_future(coro)
    crash = asyncio.ensure_future(crashed.wait())
    try:
        done, _ = await asyncio.wait(
            {task, crash}, timeout=max(0.001, timeout_s), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        crash.cancel()
    if task in done:
        return task.result()
    await _settle(task)
    if crashed.is_set():
        raise PageCrashed()
    raise TimeoutError()


class PageCrashed(RuntimeError):
    pass


class VirtualClock:
    """Page time under Proctor's control (`clock: virtual`): Chromium's virtual time
    (`Emulation.setVirtualTimePolicy`) runs timers, `Date` and `performance.now()`, and frames are
    produced only when asked (`HeadlessExperimental.beginFrame`, the old headless shell started with
    `--enable-begin-frame-control`). Each frame advances page time to the next instant of a fixed
    frame rate (whole milliseconds: 17, 33, 50, 67, ... at 60 fps), runs the timers due, then the
    frame's animation callbacks and CSS animations; only captured frames are drawn. Time stands still
    while a request of the page is in flight, so a slow network or a busy machine changes nothing the
    page sees.

    Chromium's display compositor (one per browser) refuses overlapping begin-frame requests and
    exits ("Got overlapping IssueExternalBeginFrame"), so the pages of one browser take turns:
    `lock` is the browser's. The render farm gives every slot a browser of its own on this clock, so
    a page stuck inside a frame holds up no other answer's frames (the lock stays for other callers)."""

    def __init__(self, cdp, fps: float, lock: asyncio.Lock | None = None) -> None:
        self.cdp = cdp
        self.fps = fps
        self.lock = lock or asyncio.Lock()
        self.frames = 0
        self.redraws = 0  # frames drawn at an instant already reached (full-page captures)
        self.skipped = 0  # frames of quiet page time, not begun (see run)
        self.skip_quiet = SKIP_QUIET
        self.elapsed_ms = 0
        self.base = 0.0
        self._expired = asyncio.Event()
        cdp.on("Emulation.virtualTimeBudgetExpired", lambda _event: self._expired.set())

    def instant(self, frame: int) -> int:
        return round(frame * 1000 / self.fps)

    def grant_end_us(self, frame: int) -> int:
        """Page time (µs) when the grant up to `frame` ends: its instant plus a few microseconds
        (see GRANT_OFFSET_CYCLE); 0 before the first frame."""
        return self.instant(frame) * 1000 + (frame % GRANT_OFFSET_CYCLE + 1 if frame else 0)

    async def start(self) -> None:
        reply = await self.cdp.send(
            "Emulation.setVirtualTimePolicy", {"policy": "pause", "initialVirtualTime": VIRTUAL_EPOCH_S}
        )
        self.base = float(reply["virtualTimeTicksBase"])

    async def frame(
        self, screenshot: dict[str, Any] | None = None, begin: bool = True, draw: bool = False
    ) -> dict[str, Any]:
        """The next frame: page time advances to its instant, then (unless `begin` is False) Chromium
        runs the frame's animation callbacks and lifecycle; the frame is drawn only when captured
        (`screenshot`) or when `draw` asks (a capture that waits for a drawn frame)."""
        await self._advance(1)
        if not begin:
            return {}
        params: dict[str, Any] = {"frameTimeTicks": self.base + self.elapsed_ms, "interval": 1000 / self.fps}
        if screenshot is not None:
            params["screenshot"] = screenshot
        elif not draw:
            params["noDisplayUpdates"] = True
        async with self.lock:
            return await self.cdp.send("HeadlessExperimental.beginFrame", params)

    async def redraw(self) -> dict[str, Any]:
        """Draw a frame at the current instant. Page time does not advance, and the page's animation
        callbacks do not run (VIRTUAL_TIME_SCRIPT puts them off to the next frame): however many
        redraws a capture takes, the page is where the last frame left it."""
        self.redraws += 1
        ticks = self.base + self.elapsed_ms + self.redraws * 0.001  # frame times must increase
        params = {"frameTimeTicks": ticks, "interval": 1000 / self.fps}
        await self._hold(True)
        try:
            async with self.lock:
                return await self.cdp.send("HeadlessExperimental.beginFrame", params)
        finally:
            await self._hold(False)

    async def _hold(self, on: bool) -> None:
        expression = f"window.__proctorHold && window.__proctorHold({'true' if on else 'false'})"
        try:
            await self.cdp.send("Runtime.evaluate", {"expression": expression, "silent": True})
        except Exception:
            pass  # a page gone: its frames no longer matter

    async def run(self, seconds: float) -> None:
        """Advance page time by `seconds`: the frames of that span, none of them drawn. Counted in
        frames, not milliseconds: instants are rounded, so a span measured in ms could lose a frame
        (a 1 s interval after 533 ms ran to 1517, not 1533).

        Frames of a page with nothing to do on them are not begun: while the page has no animation
        callback or CSS/Web animation pending, nothing that runs on its own schedule (workers,
        observers, media) and its images and fonts are loaded, page time runs to just before its
        next timer is due in one grant (VIRTUAL_TIME_SCRIPT's `__proctorQuiet` says). A frame begun
        on such a page changes nothing a later frame shows, so the capture is the same."""
        end = self.frames + round(seconds * self.fps)
        while self.frames < end:
            settled = self.frames - self.skipped >= SETTLE_FRAMES
            until = await self._quiet_for() if self.skip_quiet and settled else -1
            skip = 0
            while self.frames + skip < end and self.instant(self.frames + skip + 1) - self.elapsed_ms < until:
                skip += 1
            if skip:
                await self._advance(skip)
                self.skipped += skip
                continue
            for _ in range(min(BUSY_STRIDE if settled else SETTLE_FRAMES, end - self.frames)):
                await self.frame()

    async def _quiet_for(self) -> float:
        """How long page time may run without frames (ms; -1: not at all)."""
        try:
            reply = await self.cdp.send(
                "Runtime.evaluate",
                {"expression": QUIET_PROBE, "returnByValue": True, "silent": True},
            )
            value = (reply.get("result") or {}).get("value")
        except Exception:
            return -1
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            return -1  # a page that replaced the probe is stepped frame by frame
        # performance.now() is coarsened with a random per-process threshold (up to 0.1 ms off): a
        # timer due right at a frame's instant could otherwise be skipped over (measured, 1 in 8).
        return float(value) - QUIET_MARGIN_MS

    async def _advance(self, frames: int) -> None:
        """Page time runs to the instant `frames` frames on, in one grant (timers due run; no frame is
        begun here)."""
        target = self.instant(self.frames + frames)
        budget_us = self.grant_end_us(self.frames + frames) - self.grant_end_us(self.frames)
        self._expired.clear()
        await self.cdp.send(
            "Emulation.setVirtualTimePolicy",
            # Chromium takes the budget in whole microseconds: a quarter more keeps 17.001 ms (17000.999…
            # µs as a double) at 17001 whether it truncates or rounds.
            {"policy": "pauseIfNetworkFetchesPending", "budget": (budget_us + 0.25) / 1000},
        )
        await self._expired.wait()
        self.elapsed_ms, self.frames = target, self.frames + frames

    async def until(self, awaitable, begin: bool = True):
        """Run frames until `awaitable` (a page load, a Playwright action) is done; its result."""
        task = asyncio.ensure_future(awaitable)
        pump = None
        try:
            while not task.done():
                pump = asyncio.ensure_future(self.frame(begin=begin))
                await asyncio.wait({task, pump}, return_when=asyncio.FIRST_COMPLETED)
                if not pump.done():
                    await pump
                elif pump.exception() is not None:
                    raise pump.exception()
            return task.result()
        finally:
            # Cancelled (the page's deadline) or failed: neither task may outlive this call, nor leave
            # its failure unretrieved (a page closed under a pending frame fails that frame).
            await _settle(task)
            await _settle(pump)


async def _drive(
    page, settings: RenderSettings, result: PageResult, clock: _Clock, crashed: asyncio.Event
) -> None:
    steps = list(settings.interaction)
    if not hasattr(page, "_proctor_cdp"):
        try:
            page._proctor_cdp = await asyncio.wait_for(
                page.context.new_cdp_session(page), max(0.1, clock.remaining())
            )
        except Exception:
            page._proctor_cdp = None
    if settings.clock == "virtual":
        await _drive_virtual(page, steps, settings, result, clock, crashed)
        return
    try:
        try:
            await _race(
                page.goto(PAGE_URL, wait_until="commit", timeout=clock.ms()), crashed, clock.remaining()
            )
            await _race(_loaded(page, result), crashed, clock.remaining())
        except TimeoutError:
            result.notes.append("the load event did not fire before the deadline")
            raise
        except PageCrashed:
            raise
        except Exception as exc:
            if "Timeout" not in type(exc).__name__:
                raise
            result.notes.append("the load event did not fire before the deadline")
            raise TimeoutError() from exc
        result.timings["load_s"] = clock.mark()
        idle_cap = min(settings.network_idle_s, clock.remaining())
        try:
            await _race(
                page.wait_for_load_state("networkidle", timeout=max(1.0, idle_cap * 1000)),
                crashed,
                idle_cap + 0.5,
            )
        except PageCrashed:
            raise
        except Exception:
            result.notes.append(f"the network was still busy after {idle_cap:.0f} s; went on")
        result.timings["network_idle_s"] = clock.mark()
        if steps:
            await _interact(page, steps, settings, result, clock, crashed)
        else:
            for index in range(settings.screenshots):
                await _shoot(page, settings, result, clock, crashed)
                if index < settings.screenshots - 1:
                    await _race(asyncio.sleep(settings.interval_s), crashed, clock.remaining())
        result.timings["screenshots_s"] = clock.mark()
    except PageCrashed:
        _ended(result, settings, "crashed")
    except TimeoutError:
        _ended(result, settings, "timeout")
    if result.status == "ok":  # a hung or crashed page cannot answer: its last reading stands
        await _read_counts(page, result, 1.0)
    counts = result.page_counts or {}
    result.dialogs += int(counts.get("dialogs", 0) or 0)
    result.popups += int(counts.get("opens", 0) or 0)


async def _loaded(page, result: PageResult) -> None:
    """The committed document's load event or, when Chromium never fires it, the document's completion.

    A page that starts a navigation while it is still loading (a form submitted or `location.href`
    set from a timer) can reach `readyState == "complete"` with its load event never dispatched: the
    navigation is answered 204 and cancelled, and nothing checks the document's completion again
    (measured: 1 render in 8 of such a page on a loaded machine, `loadEventStart` 0 for good). The load
    event is awaited first; only when it is late is the document asked, so an ordinary page is loaded
    exactly as before. The caller bounds the wait."""
    load = asyncio.ensure_future(page.wait_for_load_state("load", timeout=0))
    try:
        while not load.done():
            await asyncio.wait({load}, timeout=LOAD_CHECK_S)
            if load.done():
                break
            try:
                state = await asyncio.wait_for(page.evaluate("() => document.readyState"), LOAD_CHECK_S)
            except Exception:  # a busy page or one between documents: ask again later
                continue
            if state == "complete":
                # The load event's report may still be on its way: a moment for it before the note.
                await asyncio.wait({load}, timeout=0.5)
                if not load.done():
                    result.notes.append("the document completed but its load event never fired; went on")
                    return
        load.result()
    finally:
        await _settle(load)  # seen: a crashed page's failure is the caller's to report, not a log's


def frame_lock(browser) -> asyncio.Lock:
    """One begin-frame lock per browser (see VirtualClock)."""
    lock = getattr(browser, "_proctor_frame_lock", None)
    if lock is None:
        lock = asyncio.Lock()
        with contextlib.suppress(Exception):
            browser._proctor_frame_lock = lock
    return lock


async def _drive_virtual(
    page, steps, settings: RenderSettings, result: PageResult, clock: _Clock, crashed: asyncio.Event
) -> None:
    """`_drive` on the virtual clock: load, settle, screenshots and interaction in page time."""
    cdp = getattr(page, "_proctor_cdp", None)
    if cdp is None:
        raise RuntimeError("no DevTools session for the virtual clock")
    virtual = VirtualClock(cdp, settings.fps, frame_lock(page.context.browser))
    try:
        fonts = cdp.send("Page.setFontFamilies", {"fontFamilies": {}, "forScripts": CJK_FONT_FAMILIES})
        await _race(fonts, crashed, clock.remaining())
        await _race(virtual.start(), crashed, clock.remaining())
        try:
            # Committed while page time stands still: the document starts at virtual time 0.
            await _race(
                page.goto(PAGE_URL, wait_until="commit", timeout=clock.ms()), crashed, clock.remaining()
            )
            # Page time runs while the document loads, but no frame is begun before the load event:
            # whether Chromium runs the animation callbacks of a frame begun while the document is
            # still being parsed depends on how far parsing got in real time (measured: a rAF
            # counter one frame apart between an idle and a loaded run). How many frames pass before
            # the load event is seen still depends on real time (known limit, docs/rendering.md);
            # holding page time at 0 until the load event is no way out: every corpus page then ran to its
            # deadline.
            await _race(virtual.until(_loaded(page, result), begin=False), crashed, clock.remaining())
        except PageCrashed:
            raise
        except Exception as exc:
            if not isinstance(exc, TimeoutError) and "Timeout" not in type(exc).__name__:
                raise
            result.notes.append("the load event did not fire before the deadline")
            raise TimeoutError() from exc
        result.timings["load_s"] = clock.mark()
        await _race(virtual.run(VIRTUAL_SETTLE_S), crashed, clock.remaining())
        result.timings["network_idle_s"] = clock.mark()
        if steps:
            await _interact_virtual(page, steps, settings, result, clock, crashed, virtual)
        else:
            for index in range(settings.screenshots):
                await _shoot_virtual(page, settings, result, clock, crashed, virtual)
                if index < settings.screenshots - 1:
                    # The captured frame is the last of the interval: run all but one undrawn.
                    await _race(
                        virtual.run(settings.interval_s - 1 / settings.fps), crashed, clock.remaining()
                    )
        result.timings["screenshots_s"] = clock.mark()
    except PageCrashed:
        _ended(result, settings, "crashed")
    except TimeoutError:
        _ended(result, settings, "timeout")
    finally:
        result.frames = virtual.frames
        result.frames_skipped = virtual.skipped
        result.timings["virtual_ms"] = virtual.elapsed_ms
    if result.status == "ok":
        await _read_counts(page, result, 1.0)
    counts = result.page_counts or {}
    result.dialogs += int(counts.get("dialogs", 0) or 0)
    result.popups += int(counts.get("opens", 0) or 0)


async def _shoot_virtual(page, settings, result: PageResult, clock: _Clock, crashed, virtual) -> None:
    """Draw the next frame and capture it (the page's full size, within the caps)."""
    width, height = settings.width, settings.height
    if settings.full_page:
        size = await _race(page.evaluate(SIZE_SCRIPT), crashed, clock.remaining())
        page_w, page_h = (int(v or 0) for v in (size or (0, 0)))
        result.page_width = max(result.page_width or 0, page_w)
        result.page_height = max(result.page_height or 0, page_h)
        _note_cut(result, "tall", page_h, settings.max_page_height)
        _note_cut(result, "wide", page_w, settings.max_page_width)
        width = min(max(page_w, settings.width), settings.max_page_width)
        height = min(max(page_h, settings.height), settings.max_page_height)
    width = min(width, settings.max_page_width)
    if (width, height) != (settings.width, settings.height):
        png = await _race(_capture_beyond_viewport(virtual, width, height), crashed, clock.remaining())
        result.screenshots.append(png)
    else:
        params = {"format": "png", "optimizeForSpeed": FAST_PNG}
        for _ in range(3):
            reply = await _race(virtual.frame(screenshot=params), crashed, clock.remaining())
            if reply.get("screenshotData"):
                result.screenshots.append(base64.b64decode(reply["screenshotData"]))
                break
        else:
            raise RuntimeError("Chromium drew no frame to capture")
    await _read_counts(page, result, min(0.5, clock.remaining()))


#: How long a full-page capture on the virtual clock waits before it draws one more frame (a redraw
#: changes nothing the page shows, so waiting longer only delays it).
CAPTURE_REDRAW_S = 1.0


async def _capture_beyond_viewport(virtual: VirtualClock, width: int, height: int) -> bytes:
    """A page larger than the viewport, captured as the real-time clock captures it: Chromium's
    capture-beyond-viewport keeps the layout viewport (`100vh`, `position: fixed`) and paints the
    whole document, which no emulation setting of the protocol does by itself. It needs frames: the
    next frame of page time, then redraws at that instant until the capture is done. The capture's
    emulation reaches the renderer on its own channel, so which frame it takes depends on real time;
    redraws run none of the page's animation callbacks, so every frame it could take shows the page
    after the same frames (when they ran them, a tall animated page's capture was one step further
    now and then)."""
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    params = {"format": "png", "optimizeForSpeed": FAST_PNG, "captureBeyondViewport": True, "clip": clip}
    capture = asyncio.ensure_future(virtual.cdp.send("Page.captureScreenshot", params))
    try:
        await virtual.frame(draw=True)
        await virtual.redraw()
        await asyncio.wait({capture}, timeout=CAPTURE_REDRAW_S)
        while not capture.done():
            await virtual.redraw()
            await asyncio.wait({capture}, timeout=CAPTURE_REDRAW_S)
        return base64.b64decode(capture.result()["data"])
    finally:
        await _settle(capture)  # a page closed under the capture fails it: nothing left unretrieved


async def _read_counts(page, result: PageResult, timeout_s: float) -> None:
    """The guard's dialog and window.open counts (cumulative in the page's document)."""
    try:
        counts = await asyncio.wait_for(page.evaluate(COUNTS_SCRIPT), max(0.05, timeout_s))
    except Exception:
        return
    if isinstance(counts, dict):
        result.page_counts = counts


async def _shoot(
    page, settings: RenderSettings, result: PageResult, clock: _Clock, crashed: asyncio.Event
) -> None:
    clip = None
    if settings.full_page:
        size = await _race(page.evaluate(SIZE_SCRIPT), crashed, clock.remaining())
        width, height = (int(v or 0) for v in (size or (0, 0)))
        result.page_width = max(result.page_width or 0, width)
        result.page_height = max(result.page_height or 0, height)
        if height > settings.max_page_height or width > settings.max_page_width:
            clip = {
                "x": 0,
                "y": 0,
                "width": min(max(width, settings.width), settings.max_page_width),
                "height": min(max(height, settings.height), settings.max_page_height),
            }
            _note_cut(result, "tall", height, settings.max_page_height)
            _note_cut(result, "wide", width, settings.max_page_width)
    elif settings.width > settings.max_page_width:
        clip = {"x": 0, "y": 0, "width": settings.max_page_width, "height": settings.height}
    cdp = getattr(page, "_proctor_cdp", None)
    if cdp is not None:
        # Straight to Chromium: the same full-page capture Playwright makes (same pixels), without
        # its extra round trips; a busy farm spends less CPU per screenshot.
        try:
            png = await _race(_capture(cdp, settings, clip), crashed, clock.remaining())
            result.screenshots.append(png)
            # The page answered just now: read its counts (a page that hangs later keeps these).
            await _read_counts(page, result, min(0.5, clock.remaining()))
            return
        except (TimeoutError, PageCrashed):
            raise
        except Exception:
            page._proctor_cdp = None  # fall back to Playwright's screenshot from now on
    shot = page.screenshot(full_page=settings.full_page, clip=clip, timeout=clock.ms(), type="png")
    result.screenshots.append(await _race(shot, crashed, clock.remaining()))


def _note_cut(result: PageResult, what: str, size: int, limit: int) -> None:
    if size <= limit:
        return
    side = "height" if what == "tall" else "width"
    note = f"page is {size} px {what}; screenshots cut at {limit} px {side}"
    if not any(n.startswith("page is") and n.endswith(side) for n in result.notes):
        result.notes.append(note)


async def _capture(cdp, settings: RenderSettings, clip: dict | None) -> bytes:
    if clip is None and settings.full_page:
        metrics = await cdp.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
        clip = {
            "x": 0,
            "y": 0,
            "width": max(1, min(math.ceil(size.get("width", settings.width)), settings.max_page_width)),
            "height": max(1, min(math.ceil(size.get("height", settings.height)), settings.max_page_height)),
        }
    params: dict[str, Any] = {"format": "png", "optimizeForSpeed": FAST_PNG}
    if clip is not None and (clip["width"] > settings.width or clip["height"] > settings.height):
        # Only a page larger than the viewport needs Chromium's capture-beyond-viewport mode (a
        # resize, a relayout and a re-raster of the whole page, then back); one that fits is the
        # viewport's pixels as they are.
        params["captureBeyondViewport"] = True
        params["clip"] = {**clip, "scale": 1}
    elif clip is not None and clip["width"] < settings.width:
        params["clip"] = {**clip, "scale": 1}  # a viewport wider than the width cap
    reply = await cdp.send("Page.captureScreenshot", params)
    return base64.b64decode(reply["data"])


async def _interact(page, steps, settings, result: PageResult, clock: _Clock, crashed: asyncio.Event) -> None:
    """The paper's protocol for interactive artifacts: a shot before, during (on `screenshot`
    steps) and after the scripted interaction."""
    await _shoot(page, settings, result, clock, crashed)
    for step in steps:
        action = step.get("action")
        timeout = clock.ms(5.0)
        if action == "click":
            if step.get("selector"):
                await _race(page.click(step["selector"], timeout=timeout), crashed, clock.remaining())
            else:
                await _race(
                    page.mouse.click(step.get("x") or 0, step.get("y") or 0), crashed, clock.remaining()
                )
        elif action == "hover":
            if step.get("selector"):
                await _race(page.hover(step["selector"], timeout=timeout), crashed, clock.remaining())
            else:
                await _race(
                    page.mouse.move(step.get("x") or 0, step.get("y") or 0), crashed, clock.remaining()
                )
        elif action == "press":
            await _race(page.keyboard.press(step.get("key") or "Enter"), crashed, clock.remaining())
        elif action == "type":
            if step.get("selector"):
                await _race(
                    page.fill(step["selector"], step.get("text") or "", timeout=timeout),
                    crashed,
                    clock.remaining(),
                )
            else:
                await _race(page.keyboard.type(step.get("text") or ""), crashed, clock.remaining())
        elif action == "scroll":
            await _race(
                page.mouse.wheel(0, step.get("delta_y") or step.get("deltaY") or 600),
                crashed,
                clock.remaining(),
            )
        elif action == "wait":
            await _race(asyncio.sleep((step.get("ms") or 0) / 1000), crashed, clock.remaining())
        elif action == "screenshot":
            await _shoot(page, settings, result, clock, crashed)
            continue
        if step.get("ms") and action != "wait":
            await _race(asyncio.sleep(step["ms"] / 1000), crashed, clock.remaining())
    await _race(asyncio.sleep(settings.interval_s), crashed, clock.remaining())
    await _shoot(page, settings, result, clock, crashed)


async def _interact_virtual(page, steps, settings, result, clock: _Clock, crashed, virtual) -> None:
    """`_interact` on the virtual clock: each action runs while frames advance (Playwright waits for
    animation frames before it clicks), waits advance page time by exactly their length."""

    async def act(coro) -> None:
        await _race(virtual.until(coro), crashed, clock.remaining())

    await _shoot_virtual(page, settings, result, clock, crashed, virtual)
    for step in steps:
        action = step.get("action")
        timeout = clock.ms(5.0)
        if action == "click":
            if step.get("selector"):
                await act(page.click(step["selector"], timeout=timeout))
            else:
                await act(page.mouse.click(step.get("x") or 0, step.get("y") or 0))
        elif action == "hover":
            if step.get("selector"):
                await act(page.hover(step["selector"], timeout=timeout))
            else:
                await act(page.mouse.move(step.get("x") or 0, step.get("y") or 0))
        elif action == "press":
            await act(page.keyboard.press(step.get("key") or "Enter"))
        elif action == "type":
            if step.get("selector"):
                await act(page.fill(step["selector"], step.get("text") or "", timeout=timeout))
            else:
                await act(page.keyboard.type(step.get("text") or ""))
        elif action == "scroll":
            await act(page.mouse.wheel(0, step.get("delta_y") or step.get("deltaY") or 600))
        elif action == "wait":
            await _race(virtual.run((step.get("ms") or 0) / 1000), crashed, clock.remaining())
        elif action == "screenshot":
            await _shoot_virtual(page, settings, result, clock, crashed, virtual)
            continue
        if step.get("ms") and action != "wait":
            await _race(virtual.run(step["ms"] / 1000), crashed, clock.remaining())
    await _race(virtual.run(settings.interval_s - 1 / settings.fps), crashed, clock.remaining())
    await _shoot_virtual(page, settings, result, clock, crashed, virtual)


def is_blank(png: bytes, tolerance: int = 6) -> bool:
    """Whether a screenshot is a single colour (an empty or failed page), ignoring faint noise."""
    import numpy as np
    from PIL import Image

    from proctor_jobs.render.images import open_image

    with open_image(png) as image:
        image = image.convert("RGB")
        image.thumbnail((320, 320), Image.Resampling.BOX)
        pixels = np.asarray(image, dtype=np.int16)
    spread = pixels.reshape(-1, 3).max(axis=0) - pixels.reshape(-1, 3).min(axis=0)
    return bool((spread <= tolerance).all())


def _ended(result: PageResult, settings: RenderSettings, status: str) -> None:
    """A page that crashed or hung past its deadline (on either clock): its status and why."""
    result.status = status
    if status == "crashed":
        result.reason = "the page crashed (its renderer process died, e.g. out of memory)"
        return
    taken = len(result.screenshots)
    result.reason = (
        f"the page stopped responding and the {settings.deadline_s:g} s render deadline passed "
        f"after {taken} screenshot{'s' if taken != 1 else ''} "
        "(an endless loop or a page too heavy to draw)"
    )
