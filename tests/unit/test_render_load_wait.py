"""The wait for a page's load event (`page._loaded`), with a stand-in page: no Chromium needed."""

from __future__ import annotations

import asyncio
import gc

from proctor_jobs.render import page as page_module


class CrashingPage:
    """Its load wait fails (the renderer crashed) while Proctor is asking it for its readyState,
    which never answers."""

    async def wait_for_load_state(self, state: str, timeout: float) -> None:
        await asyncio.sleep(0.15)  # while Proctor is asking for readyState (from 0.1 s to 0.2 s)
        raise RuntimeError("Navigation failed because page crashed!")

    async def evaluate(self, expression: str):
        await asyncio.sleep(30)


def test_a_page_crashing_while_its_load_is_awaited_leaves_no_unretrieved_error(monkeypatch):
    """The render farm stops waiting when the page crashes (it cancels the wait); the load wait's own
    failure must not then surface as asyncio's "Task exception was never retrieved" in the worker's
    log (it did, once per crashed page)."""
    monkeypatch.setattr(page_module, "LOAD_CHECK_S", 0.1)
    reported: list[dict] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        waiting = asyncio.ensure_future(page_module._loaded(CrashingPage(), page_module.PageResult()))
        await asyncio.sleep(0.17)  # the load wait has failed; _loaded is still waiting on evaluate
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(scenario())
    gc.collect()
    assert not [c for c in reported if "never retrieved" in c.get("message", "")], reported
