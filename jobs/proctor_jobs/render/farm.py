"""The render farm of one worker: one Chromium, many pages rendered at once in separate contexts.

Why pooled: starting Chromium costs about a second and most of an item's render time is waiting
(network idle, the 1 s between screenshots). One browser per worker process with N concurrent
contexts overlaps those waits; a context per item keeps items isolated from each other (cookies,
storage, service workers, crashes of one renderer process).

A crashed or wedged browser is replaced before the next render; the items it was rendering are
recorded as failed with the reason, and the worker goes on.

What a page can reach of the machine is bounded here too: Chromium starts from a minimal
environment of its own (`chromium_env`: never the worker's, which holds the store's and the judge's
credentials) with a scratch HOME and TMPDIR, and every Chromium process (renderers included) has a
memory ceiling (RLIMIT_DATA, set by the launcher script) and a JavaScript heap limit, so a page that
allocates without end crashes its own renderer (recorded as such) instead of the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from proctor_jobs.render.network import CHROMIUM_NETWORK_FLAGS, netns_wrapper
from proctor_jobs.render.page import PageResult, RenderSettings, capture_value
from proctor_jobs.render.slots import Slot, close_slot, open_slot, render_in_slot

log = logging.getLogger("proctor.render.farm")

#: Required by the project: Debian's Chromium, without its own sandbox (the worker pod/namespace is
#: the sandbox), and with nothing that phones home.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXTRA_FLAGS = [
    "--disable-dev-shm-usage",  # containers have a small /dev/shm
    "--mute-audio",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--disable-breakpad",
    "--disable-features=Translate,MediaRouter,OptimizationHints,InterestFeedContentSuggestions",
    "--font-render-hinting=none",  # the same pixels on every machine with the same fonts
]

#: Memory ceilings of every Chromium process (MB): private writable memory (RLIMIT_DATA: the JS heap,
#: ArrayBuffers, WebAssembly memories, the DOM, bitmaps), and the JS heap inside it.
PROCESS_MEMORY_MB = int(os.environ.get("PROCTOR_RENDER_MEMORY_MB", "2048"))
JS_HEAP_MB = int(os.environ.get("PROCTOR_RENDER_JS_HEAP_MB", "1024"))
MEMORY_FLAGS = [f"--js-flags=--max-old-space-size={JS_HEAP_MB}"]

#: Longest wait for a render slot to open (a browser launch included), never charged to the answer.
SLOT_OPEN_S = 60.0

#: What Chromium may see of the environment, besides its own scratch directories.
PASSED_ENV = ("FONTCONFIG_FILE", "FONTCONFIG_PATH", "FONTCONFIG_SYSROOT", "TZDIR")


def chromium_env(scratch: Path) -> dict[str, str]:
    """The whole environment Chromium starts with: a PATH, a scratch HOME/TMPDIR/XDG tree, one
    locale and time zone, and the font configuration if the worker has one. Nothing else of the
    worker's environment (AWS keys, the judge's API key, ...) reaches a process a page runs in."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch / "tmp"),
        "XDG_CONFIG_HOME": str(scratch / "home" / ".config"),
        "XDG_CACHE_HOME": str(scratch / "home" / ".cache"),
        "XDG_DATA_HOME": str(scratch / "home" / ".local" / "share"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }
    for name in PASSED_ENV:
        if os.environ.get(name):
            env[name] = os.environ[name]
    for key in ("HOME", "TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def launcher(executable: str, scratch: Path, memory_mb: int = PROCESS_MEMORY_MB) -> str:
    """A script that sets the memory ceiling (inherited by every process Chromium starts) and
    execs `executable` (Chromium, or the network-namespace wrapper around it)."""
    script = scratch / "chromium-launcher"
    kb = memory_mb * 1024
    # A lower hard limit set by the pod is stricter and stays; otherwise the soft limit is set.
    limit = f"ulimit -d {kb} 2>/dev/null || ulimit -S -d {kb} 2>/dev/null || true\n" if kb > 0 else ""
    script.write_text(f'#!/bin/sh\n{limit}exec "{executable}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(script)


def chromium_path() -> str:
    for candidate in (os.environ.get("PROCTOR_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(
        "Chromium not found: install Debian's chromium (apt-get install chromium) or set PROCTOR_CHROMIUM"
    )


#: The virtual clock (page.py) drives frames itself: only the old headless shell accepts frame control
#: (the `chromium` binary's new headless mode refuses it). Debian: `apt-get install chromium-headless-shell`.
VIRTUAL_CLOCK_FLAGS = ["--enable-begin-frame-control", "--run-all-compositor-stages-before-draw"]
HEADLESS_SHELL_FIX = "apt-get install chromium-headless-shell (or set PROCTOR_HEADLESS_SHELL)"


def headless_shell_path() -> str:
    """Chromium's old headless shell (same version as Debian's chromium), for `clock: virtual`."""
    for candidate in (
        os.environ.get("PROCTOR_HEADLESS_SHELL"),
        "/usr/bin/chromium-headless-shell",
        shutil.which("chromium-headless-shell"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"chromium-headless-shell not found (clock: virtual): {HEADLESS_SHELL_FIX}")


def browser_path(clock: str = "realtime") -> str:
    return headless_shell_path() if clock == "virtual" else chromium_path()


@lru_cache(maxsize=4)
def chromium_version(path: str | None = None) -> str:
    """`Chromium 156.0.8078.79 …` -> `156.0.8078.79`; part of the render cache key."""
    path = path or chromium_path()
    try:
        with tempfile.TemporaryDirectory(prefix="proctor-chromium-version-") as scratch:
            out = subprocess.run(
                [path, "--version"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
                env=chromium_env(Path(scratch)),
            ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for word in out.split():
        if word[:1].isdigit() and "." in word:
            return word
    return out.strip()[:40] or "unknown"


class BrowserFarm:
    """Use as `async with BrowserFarm(concurrency=8) as farm: await farm.render(html, libs, settings)`."""

    def __init__(
        self,
        concurrency: int = 4,
        chromium: str | None = None,
        isolate_network: bool = True,
        clock: str = "realtime",
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.clock = clock
        self.chromium = chromium or browser_path(clock)
        self.isolate_network = isolate_network
        self.isolation: list[str] = []
        self._slots = asyncio.Semaphore(self.concurrency)
        self._lock = asyncio.Lock()
        self._playwright = None
        self._browser = None
        self._free: list[tuple[object, Slot]] = []  # (browser, slot) ready for the next item
        # The virtual clock: one browser per slot (see _take_slot), each with its scratch directory.
        self._own: dict[object, Path] = {}
        self._retiring: set[asyncio.Task] = set()  # slots being closed after a hung or crashed page
        self._scratch: Path | None = None
        self.launches = 0
        self.renders = 0
        self.slots_opened = 0

    async def __aenter__(self) -> BrowserFarm:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _ensure_browser(self):
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:
                await self._discard()
            self._browser, self._scratch = await self._launch()
            return self._browser

    async def _launch(self):
        """A new Chromium, with its own scratch directory: (browser, scratch)."""
        if self._playwright is None:
            from playwright.async_api import async_playwright

            self._playwright = await async_playwright().start()
        if self.isolate_network:
            executable, self.isolation = netns_wrapper(self.chromium)
        else:
            executable, self.isolation = self.chromium, ["request-interception"]
        scratch = Path(tempfile.mkdtemp(prefix="proctor-chromium-scratch-"))
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=launcher(executable, scratch),
                args=CHROMIUM_FLAGS
                + EXTRA_FLAGS
                + MEMORY_FLAGS
                + CHROMIUM_NETWORK_FLAGS
                + (VIRTUAL_CLOCK_FLAGS if self.clock == "virtual" else []),
                env=chromium_env(scratch),
                headless=True,
                timeout=60_000,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        self.launches += 1
        log.info("launched Chromium %s (%s)", browser.version, ", ".join(self.isolation))
        return browser, scratch

    async def _discard(self) -> None:
        self._free = [(owner, slot) for owner, slot in self._free if owner is not self._browser]
        browser, self._browser = self._browser, None
        scratch, self._scratch = self._scratch, None
        await self._close_browser(browser, scratch)

    async def _close_browser(self, browser, scratch: Path | None) -> None:
        """Close a browser (its contexts die with it) and delete its scratch directory."""
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), 10)
            except Exception:
                # A browser that ignores close(): stop the Playwright driver, whose exit closes the pipe
                # Chromium lives on (Chromium exits with it); the next render starts both afresh.
                log.warning("Chromium did not close; restarting Playwright")
                playwright, self._playwright = self._playwright, None
                if playwright is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(playwright.stop(), 10)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    async def render(
        self, html: str, libraries, settings: RenderSettings, extra: dict | None = None
    ) -> PageResult:
        """Render one page; a browser crash becomes a failed result, never an exception.

        The result is returned as soon as the page's deadline has passed: closing the context of a
        page that hung (its renderer still spinning) happens afterwards, in the background, and
        keeps the concurrency slot until it is done."""
        queued = time.monotonic()
        await self._slots.acquire()
        retiring = False
        try:
            try:
                opening = time.monotonic()
                # Bounded: a browser that dies while a context opens may never answer Playwright (and
                # on the virtual clock a new slot launches its browser first).
                bound = max(settings.deadline_s, SLOT_OPEN_S)
                browser, slot = await asyncio.wait_for(self._take_slot(settings), bound)
                # The page's deadline counts from here: opening a context is the machine's time (a
                # cold or busy browser takes seconds), never charged to the answer.
                started = time.monotonic()
            except Exception as exc:
                return PageResult(
                    status="error",
                    infrastructure=True,
                    reason=f"could not start Chromium or a page: {type(exc).__name__}: {exc}",
                )
            self.renders += 1
            try:
                result = await render_in_slot(slot, html, libraries, settings, extra, started)
            except Exception as exc:
                slot.healthy = False
                first = str(exc).splitlines()[0][:300] if str(exc) else ""
                result = PageResult(
                    status="error",
                    infrastructure=True,
                    reason=f"rendering failed: {type(exc).__name__}: {first}",
                )
            result.timings["waited_s"] = round(opening - queued, 3)  # for a slot and the browser
            result.timings["slot_s"] = round(started - opening, 3)  # opening the slot (and its browser)
            if not browser.is_connected():
                # The browser died during this render (or was killed): not the page's doing.
                result.infrastructure = True
                result.status = "crashed"
                result.reason = f"the browser crashed: {result.reason or 'it disconnected'}"
            elif slot.healthy:
                self._free.append((browser, slot))
            else:
                retiring = True
                task = asyncio.ensure_future(self._retire(browser, slot))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            if not browser.is_connected():
                await self._replace(browser)
            return result
        finally:
            if not retiring:
                self._slots.release()

    async def _retire(self, browser, slot: Slot) -> None:
        """Close a slot that must not be reused; a browser that cannot close it is replaced."""
        try:
            if browser in self._own:
                await self._close_owned(browser)
            elif not await close_slot(slot):
                log.warning("closing a page's context failed; replacing the browser")
                await self._replace(browser)
        finally:
            self._slots.release()

    async def _replace(self, browser) -> None:
        if browser in self._own:
            await self._close_owned(browser)
            return
        async with self._lock:
            if self._browser is browser:
                await self._discard()

    async def _close_owned(self, browser) -> None:
        scratch = self._own.pop(browser, None)
        self._free = [(owner, slot) for owner, slot in self._free if owner is not browser]
        await self._close_browser(browser, scratch)

    async def _take_slot(self, settings: RenderSettings) -> tuple[object, Slot]:
        """A free slot, or a new one: (its browser, the slot). Cleans up after itself when opening fails
        or is cancelled (the caller's deadline).

        On the virtual clock every slot has a browser of its own: frames are begun one page at a time
        per browser (VirtualClock), so a page that never finishes its frame (an endless loop in an
        animation callback) would otherwise hold its neighbours' frames until its deadline, and they
        would end as timeouts of their own."""
        virtual = self.clock == "virtual"
        shared = None if virtual else await self._ensure_browser()
        while self._free:
            owner, slot = self._free.pop()
            if slot.healthy and owner.is_connected() and (virtual or owner is shared):
                return owner, slot
            if owner in self._own:
                await self._close_owned(owner)
        if virtual:
            browser, self._own[browser] = await self._launch()
        else:
            browser = shared
        self.slots_opened += 1
        try:
            return browser, await open_slot(browser, settings.width, settings.height, virtual=virtual)
        except BaseException as exc:
            if virtual:
                await self._close_owned(browser)
            elif isinstance(exc, asyncio.CancelledError | TimeoutError) or not browser.is_connected():
                await self._replace(browser)
            raise

    async def capture(self, html: str, libraries, deadline_s: float, width: int, height: int, extra=None):
        """Load a page that computes a value (`window.__proctorResult`); returns (value, PageResult)."""
        async with self._slots:
            try:
                browser = await self._ensure_browser()
            except Exception as exc:
                return None, PageResult(
                    status="error",
                    infrastructure=True,
                    reason=f"could not start Chromium: {type(exc).__name__}: {exc}",
                )
            self.renders += 1
            try:
                value, result = await capture_value(
                    browser, html, libraries, deadline_s, width, height, extra
                )
            except Exception as exc:
                value, result = (
                    None,
                    PageResult(
                        status="crashed" if not browser.is_connected() else "error",
                        infrastructure=True,
                        reason=f"{type(exc).__name__}: {exc}",
                    ),
                )
            if result.wedged or not browser.is_connected():
                await self._replace(browser)
            return value, result

    async def close(self) -> None:
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        for browser in list(self._own):
            await self._close_owned(browser)
        await self._discard()
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
