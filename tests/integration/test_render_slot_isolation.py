"""One answer may not reach the next one or the ones beside it, on either clock.

The next: a render slot's context is reused between items (slots.py), so what a page stores must be
gone before the next item's page opens (the virtual clock opens a new page per item, the real-time
clock navigates the same one).

The first answer stores everything a page can keep without a server: local and session storage, a
cookie, an IndexedDB record, a Cache Storage entry and `window.name`. It writes them again while its
document is being left. The next answer, rendered in the same slot, reads them all and must find
nothing.

Beside it: an answer that hangs in an animation callback must end as its own timeout while the
answers rendered at the same time finish normally. On the virtual clock frames are begun one page
at a time per browser, so this holds only because every slot has a browser of its own (farm.py).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from proctor_jobs.render.page import RenderSettings

pytestmark = pytest.mark.slow

# IndexedDB and Cache Storage answer in real time; on the virtual clock, page time runs ahead of it
# while a page is quiet. Both pages keep an animation frame pending until their work is done, so
# every frame is begun (real time passes) and the render cannot end before it.
BUSY_UNTIL = """const busyUntil = (work) => {
  let done = false;
  work.finally(() => { done = true; });
  requestAnimationFrame(function spin() { if (!done) requestAnimationFrame(spin); });
};
"""

SPOILER = """<html><body><h1>spoiler</h1><script>
"""+BUSY_UNTIL+"""
// Written again while the document is being left, after anything the wipe did from inside it.
const late = (event) => {
  sessionStorage.setItem('late', event); localStorage.setItem('late', event); window.name = 'late-' + event;
  document.cookie = 'late=' + event + '; max-age=86400; path=/';
};
for (const event of ['pagehide', 'unload', 'beforeunload', 'visibilitychange']) addEventListener(event, late);
busyUntil((async () => {
  localStorage.setItem('left', 'behind');
  sessionStorage.setItem('left', 'behind');
  document.cookie = 'left=behind; max-age=86400; path=/';
  window.name = 'left-behind';
  await new Promise((done, fail) => {
    const open = indexedDB.open('left', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('s');
    open.onsuccess = () => {
      const tx = open.result.transaction('s', 'readwrite');
      tx.objectStore('s').put('behind', 'k');
      tx.oncomplete = done; tx.onerror = fail;
    };
    open.onerror = fail;
  });
  const cache = await caches.open('left');
  await cache.put('/left', new Response('behind'));
  console.log('written');
})().catch(e => console.log('not written: ' + e)));
</script></body></html>"""

READER = """<html><body><h1>reader</h1><script>
"""+BUSY_UNTIL+"""
busyUntil((async () => {
  const found = {
    local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
    name: window.name, databases: (await indexedDB.databases()).map(d => d.name), caches: await caches.keys(),
  };
  console.log("found " + JSON.stringify(found));
})().catch(e => console.log('reader failed: ' + e)));
</script></body></html>"""

NOTHING = {"local": 0, "session": 0, "cookie": "", "name": "", "databases": [], "caches": []}


def _messages(result) -> list[str]:
    return [str(message.get("text", "")) for message in result.console]


@pytest.mark.parametrize("clock", ["realtime", "virtual"])
def test_the_next_answer_in_a_slot_finds_nothing_the_last_one_stored(libraries, clock):
    from proctor_jobs.render.farm import BrowserFarm

    settings = RenderSettings(deadline_s=20.0, network_idle_s=1.0, clock=clock)

    async def main():
        async with BrowserFarm(concurrency=1, clock=clock) as farm:  # one slot: the reader gets the spoiler's
            spoiled = await farm.render(SPOILER, libraries, settings)
            read = await farm.render(READER, libraries, settings)
            return spoiled, read, farm.slots_opened

    spoiled, read, slots_opened = asyncio.run(main())
    assert slots_opened == 1, "both answers must be rendered in the same slot for this to test anything"
    assert spoiled.status == "ok" and "written" in _messages(spoiled), _messages(spoiled)
    assert read.status == "ok", read.reason
    found = [text for text in _messages(read) if text.startswith("found ")]
    assert found, _messages(read)
    assert json.loads(found[0].removeprefix("found ")) == NOTHING


HOG = """<html><body><h1>hog</h1><script>
let frames = 0;
requestAnimationFrame(function step() { if (++frames > 40) { for (;;) {} } requestAnimationFrame(step); });
</script></body></html>"""

NEIGHBOUR = """<html><body><h1 id=n>0</h1><script>
requestAnimationFrame(function step(t) { n.textContent = Math.round(t); requestAnimationFrame(step); });
</script></body></html>"""


@pytest.mark.parametrize("clock", ["realtime", "virtual"])
def test_a_page_that_hangs_in_a_frame_does_not_stop_the_pages_beside_it(libraries, clock):
    from proctor_jobs.render.farm import BrowserFarm

    settings = RenderSettings(deadline_s=8.0, clock=clock)

    async def main():
        async with BrowserFarm(concurrency=3, clock=clock) as farm:
            return await asyncio.gather(
                farm.render(HOG, libraries, settings),
                farm.render(NEIGHBOUR, libraries, settings),
                farm.render(NEIGHBOUR, libraries, settings),
            )

    hog, *neighbours = asyncio.run(main())
    assert hog.status == "timeout" and not hog.infrastructure, (hog.status, hog.reason)
    for result in neighbours:
        assert result.status == "ok", (result.status, result.reason)
        assert len(result.screenshots) == 3
