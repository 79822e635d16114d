"""Render slots: one browser context (and page) per concurrent render, wiped between items.

Creating a context and its renderer process costs a browser most of a CPU-second; navigating an
existing page costs a fifth of that. So each of the farm's `concurrency` slots keeps its context and
page, and between two items:

- on the real-time clock, the finished page's `localStorage`/`sessionStorage` are cleared from inside
  it, the page is sent to `about:blank` (its timers, workers and requests end with the document) and
  `window.name`, which belongs to the tab, is emptied there; on the virtual clock the page is closed
  and a new one opened (virtual time cannot be set back), which takes the tab's state with it;
- then the artifact origin's stored data (cookies, IndexedDB, Cache Storage, local storage), which a
  handler of the old document's unload could have written again, is deleted through the DevTools
  protocol (tests/integration/test_render_slot_isolation.py attacks all of it);
- the next item gets a fresh router and a fresh result; events that arrive between items go nowhere.

Items rendered at the same time are always in separate contexts. A slot whose page hung, crashed, or
could not be wiped is closed and replaced by a new context, and so is every slot after
`MAX_USES` items (bounding what a long-lived renderer accumulates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from proctor_jobs.render.network import PAGE_ORIGIN, HermeticRouter
from proctor_jobs.render.page import (
    GUARD_SCRIPT,
    VIRTUAL_TIME_SCRIPT,
    PageResult,
    RenderSettings,
    Watch,
    _Clock,
    _drive,
    _watch,
    _watch_page,
    new_context,
)

log = logging.getLogger("proctor.render.slots")

MAX_USES = 40
CLEAR_STORAGE = (
    "() => { try { localStorage.clear(); } catch (e) {} try { sessionStorage.clear(); } catch (e) {} }"
)


@dataclass
class Slot:
    context: Any
    page: Any
    watch: Watch
    viewport: tuple[int, int]
    router: HermeticRouter | None = None
    uses: int = 0
    healthy: bool = True
    virtual: bool = False  # the virtual clock: a new page (and renderer) per item, page time from 0
    extra: dict = field(default_factory=dict)

    async def handle_route(self, route) -> None:
        router = self.router
        if router is None:  # between items: nothing may load
            with contextlib.suppress(Exception):
                await route.abort("blockedbyclient")
            return
        await router.handle_route(route)

    async def handle_websocket(self, ws) -> None:
        router = self.router
        if router is not None:
            await router.handle_websocket(ws)
        else:
            with contextlib.suppress(Exception):
                await ws.close(code=1008, reason="blocked")


async def open_slot(browser, width: int, height: int, virtual: bool = False) -> Slot:
    context = await new_context(browser, width, height)
    try:
        await context.add_init_script(GUARD_SCRIPT)
        if virtual:
            await context.add_init_script(VIRTUAL_TIME_SCRIPT)
        page = await context.new_page()
        slot = Slot(context=context, page=page, watch=Watch(), viewport=(width, height), virtual=virtual)
        await context.route("**/*", slot.handle_route)
        with contextlib.suppress(Exception):  # WebSocket routing needs Playwright >= 1.48
            await context.route_web_socket("**/*", slot.handle_websocket)
        _watch(page, context, slot.watch)
        return slot
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(context.close(), 10)
        raise


async def close_slot(slot: Slot) -> bool:
    """Close the slot's context; False when the browser did not manage to (it is wedged)."""
    slot.healthy = False
    try:
        await asyncio.wait_for(slot.context.close(), 10)
        return True
    except Exception:
        return False


async def render_in_slot(
    slot: Slot, html: str, libraries, settings: RenderSettings, extra=None, started: float | None = None
) -> PageResult:
    """Render one item in a slot; marks the slot unhealthy when it must not be reused. The deadline
    counts from `started` (when the item's slot was open), so opening the slot is outside it."""
    result = PageResult()
    router = HermeticRouter(html, libraries, extra)
    result.network = router.log
    clock = _Clock(settings.deadline_s, started)
    slot.watch.crashed = asyncio.Event()
    slot.watch.result = result
    slot.router = router
    slot.uses += 1
    try:
        if slot.viewport != (settings.width, settings.height):
            await asyncio.wait_for(
                slot.page.set_viewport_size({"width": settings.width, "height": settings.height}),
                max(0.1, clock.remaining()),
            )
            slot.viewport = (settings.width, settings.height)
        result.timings["context_s"] = clock.mark()
        await _drive(slot.page, settings, result, clock, slot.watch.crashed)
    except Exception as exc:  # the browser failed under us (crash, disconnect)
        result.status = "crashed" if slot.watch.crashed.is_set() or "crash" in str(exc).lower() else "error"
        result.reason = result.reason or f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    finally:
        result.timings["total_s"] = clock.mark()
    if result.status != "ok" or slot.uses >= MAX_USES or not await _wipe(slot):
        slot.healthy = False
    slot.watch.result = None
    slot.router = None
    return result


async def _wipe(slot: Slot) -> bool:
    """Leave the item's document and delete what it stored; False if the page would not go."""
    page = slot.page
    try:
        if slot.virtual:
            # Virtual time cannot be set back: the next item gets a new page, whose time starts at 0.
            # Closing the page ends its document (timers, workers, requests) and its tab's session
            # storage and `window.name`.
            slot.router = None  # from here on nothing of the old document may load
            await asyncio.wait_for(page.close(), 5)
            slot.watch.opening = True
            try:
                page = slot.page = await asyncio.wait_for(slot.context.new_page(), 10)
            finally:
                slot.watch.opening = False
            _watch_page(page, slot.watch)
            size = page.viewport_size or {}
            slot.viewport = (size.get("width", 0), size.get("height", 0))
            page._proctor_cdp = await asyncio.wait_for(slot.context.new_cdp_session(page), 5)
        else:
            await asyncio.wait_for(page.evaluate(CLEAR_STORAGE), 2)
            slot.router = None
            await asyncio.wait_for(page.goto("about:blank", wait_until="commit"), 5)
            # `window.name` belongs to the tab, not the document: it would greet the next answer. Set
            # empty on the blank document, after any of the old document's unload handlers ran.
            await asyncio.wait_for(page.evaluate("() => { window.name = ''; }"), 2)
        # Cookies, IndexedDB, Cache Storage and local storage outlive the document: deleted once it is
        # gone (a handler of its unload could write them again).
        cdp = getattr(page, "_proctor_cdp", None)
        if cdp is not None:
            clear = cdp.send("Storage.clearDataForOrigin", {"origin": PAGE_ORIGIN, "storageTypes": "all"})
            await asyncio.wait_for(clear, 5)
        await asyncio.wait_for(slot.context.clear_cookies(), 5)
        return True
    except Exception as exc:
        log.debug("could not wipe a render slot (%s); replacing it", exc)
        return False
