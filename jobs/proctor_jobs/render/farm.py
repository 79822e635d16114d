"""The render farm of one worker: one Chromium, many pages rendered at once in separate contexts.

Why pooled: starting Chromium costs about a second and most of an item's render time is waiting
(network idle, the 1 s between screenshots). One browser per worker process with N concurrent
contexts overlaps those waits; a context per item keeps items isolated from each other (cookies,
storage, service workers, crashes of one renderer process).

A crashed or wedged browser is replaced before the next render; the items it was rendering are
recorded as failed with the reason, and the worker goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
from functools import lru_cache

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


def chromium_path() -> str:
    for candidate in (os.environ.get("PROCTOR_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(
        "Chromium not found: install Debian's chromium (apt-get install chromium) or set PROCTOR_CHROMIUM"
    )


@lru_cache(maxsize=4)
def chromium_version(path: str | None = None) -> str:
    """`Chromium 156.0.8078.79 …` -> `156.0.8078.79`; part of the render cache key."""
    path = path or chromium_path()
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=20, check=False
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
        self, concurrency: int = 4, chromium: str | None = None, isolate_network: bool = True
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.chromium = chromium or chromium_path()
        self.isolate_network = isolate_network
        self.isolation: list[str] = []
        self._slots = asyncio.Semaphore(self.concurrency)
        self._lock = asyncio.Lock()
        self._playwright = None
        self._browser = None
        self._free: list[tuple[object, Slot]] = []  # (browser, slot) ready for the next item
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
            if self._playwright is None:
                from playwright.async_api import async_playwright

                self._playwright = await async_playwright().start()
            executable, self.isolation = (
                netns_wrapper(self.chromium)
                if self.isolate_network
                else (self.chromium, ["request-interception"])
            )
            self._browser = await self._playwright.chromium.launch(
                executable_path=executable,
                args=CHROMIUM_FLAGS + EXTRA_FLAGS + CHROMIUM_NETWORK_FLAGS,
                headless=True,
                timeout=60_000,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
            self.launches += 1
            log.info("launched Chromium %s (%s)", self._browser.version, ", ".join(self.isolation))
            return self._browser

    async def _discard(self) -> None:
        self._free.clear()  # their contexts die with the browser
        browser, self._browser = self._browser, None
        if browser is None:
            return
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

    async def render(
        self, html: str, libraries, settings: RenderSettings, extra: dict | None = None
    ) -> PageResult:
        """Render one page; a browser crash becomes a failed result, never an exception."""
        async with self._slots:
            try:
                browser = await self._ensure_browser()
                slot = await self._take_slot(browser, settings)
            except Exception as exc:
                return PageResult(
                    status="error",
                    infrastructure=True,
                    reason=f"could not start Chromium or a page: {type(exc).__name__}: {exc}",
                )
            self.renders += 1
            try:
                result = await render_in_slot(slot, html, libraries, settings, extra)
            except Exception as exc:
                slot.healthy = False
                first = str(exc).splitlines()[0][:300] if str(exc) else ""
                result = PageResult(
                    status="error",
                    infrastructure=True,
                    reason=f"rendering failed: {type(exc).__name__}: {first}",
                )
            if not browser.is_connected():
                # The browser died during this render (or was killed): not the page's doing.
                result.infrastructure = True
                result.status = "crashed"
                result.reason = f"the browser crashed: {result.reason or 'it disconnected'}"
            elif slot.healthy:
                self._free.append((browser, slot))
            elif not await close_slot(slot):
                result.wedged = True
                result.notes.append("closing the page's context failed; browser replaced")
            if result.wedged or not browser.is_connected():
                async with self._lock:
                    if self._browser is browser:
                        await self._discard()
            return result

    async def _take_slot(self, browser, settings: RenderSettings) -> Slot:
        while self._free:
            owner, slot = self._free.pop()
            if owner is browser and slot.healthy:
                return slot
        self.slots_opened += 1
        return await open_slot(browser, settings.width, settings.height)

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
                async with self._lock:
                    if self._browser is browser:
                        await self._discard()
            return value, result

    async def close(self) -> None:
        await self._discard()
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
