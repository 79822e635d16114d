"""The render farm in a real Chromium: hermetic network, hostile pages, library cache, crash recovery.

One browser renders every page of this module (CI has two cores): the pages are rendered together
once, in a module fixture, and the tests read the results.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from proctor_jobs.render.page import RenderSettings, is_blank

pytestmark = pytest.mark.slow


class Listener:
    """A loopback TCP and UDP listener standing in for 'the outside': it must see nothing."""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(64)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.seen: list[str] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._receive, daemon=True).start()

    def _accept(self) -> None:
        self.tcp.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                self.seen.append("tcp:" + conn.recv(300).decode(errors="replace").split("\r\n")[0])
            except OSError:
                self.seen.append("tcp:<connected>")
            conn.close()

    def _receive(self) -> None:
        self.udp.settimeout(0.2)
        while not self._stop:
            try:
                data, _ = self.udp.recvfrom(2048)
            except OSError:
                continue
            self.seen.append(f"udp:{len(data)} bytes")

    def close(self) -> None:
        self._stop = True
        self.tcp.close()
        self.udp.close()


def phone_home_page(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return f"""<!DOCTYPE html><html><head>
<link rel="preconnect" href="{base}"><link rel="dns-prefetch" href="//outside.example">
<link rel="prefetch" href="{base}/prefetch"><link rel="stylesheet" href="{base}/style.css">
<script src="{base}/script.js"></script>
</head><body><h1>phoning home</h1>
<img src="{base}/img.png"><iframe src="{base}/frame"></iframe>
<form id="f" action="{base}/form" method="post"><input name="a" value="1"></form>
<script>
fetch('{base}/fetch').catch(() => {{}});
fetch('http://localhost:{port}/fetch-localhost', {{mode: 'no-cors'}}).catch(() => {{}});
const x = new XMLHttpRequest(); x.open('GET', '{base}/xhr'); x.send();
navigator.sendBeacon('{base}/beacon', 'data');
try {{ new WebSocket('ws://127.0.0.1:{port}/ws'); }} catch (e) {{}}
try {{ new EventSource('{base}/events'); }} catch (e) {{}}
new Worker(URL.createObjectURL(new Blob(["fetch('{base}/worker').catch(() => 0)"])));
try {{
  const servers = {{iceServers: [{{urls: 'stun:127.0.0.1:{port}'}}]}};
  const pc = new (window.RTCPeerConnection || function () {{}})(servers);
  pc.createDataChannel && pc.createDataChannel('x');
  pc.createOffer && pc.createOffer().then(o => pc.setLocalDescription(o));
}} catch (e) {{}}
window.open('{base}/popup');
setTimeout(() => document.getElementById('f').submit(), 200);
setTimeout(() => {{ location.href = '{base}/away'; }}, 400);
</script></body></html>"""


def page(script: str = "", body: str = "<h1>x</h1>", head: str = "") -> str:
    return f"<html><head>{head}</head><body>{body}<script>{script}</script></body></html>"


ADS = "https://ads.example.com"
HOSTILE = {
    "infinite_loop": page("while (true) {}"),
    "alert_loop": page("let n = 0; while (true) alert('m' + n++);"),
    "window_open_spam": page(
        f"for (let i = 0; i < 400; i++) window.open('{ADS}/' + i);"
        f"setInterval(() => window.open('{ADS}/x'), 20);"
    ),
    "dom_200mb": page(
        "const r = '<tr>' + '<td>0.000</td>'.repeat(20) + '</tr>'; let h = '<table>';"
        "while (h.length < 200 * 1024 * 1024) h += r.repeat(1000); document.body.innerHTML = h;"
    ),
    "navigation_away": page(
        "setTimeout(() => location.href = 'https://example.com/', 200);"
        "setTimeout(() => location.replace('https://example.org/'), 600);"
    ),
    "meta_refresh": page(head="<meta http-equiv='refresh' content='0'>"),
    "meta_refresh_away": page(head="<meta http-equiv='refresh' content='0;url=https://example.com/'>"),
}

CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
PAGES = {
    "react_from_cdn": page(
        "ReactDOM.createRoot(document.getElementById('r'))"
        ".render(React.createElement('h1', {id: 'v'}, 'React ' + React.version));",
        body="<div id='r'></div>",
        head="<script src='https://unpkg.com/react@18/umd/react.production.min.js'></script>"
        f"<script src='{CDNJS}/react-dom/18.2.0/umd/react-dom.production.min.js'></script>"
        "<script src='https://fonts.googleapis.com/nothing.js'></script>",
    ),
    # Chromium never fires the load event of a document that starts a navigation while it loads (the
    # navigation is answered 204 and cancelled): the render must go on once the document is complete.
    "navigates_while_loading": page(
        "document.getElementById('f').submit(); const t = Date.now(); while (Date.now() - t < 500) {}",
        body="<h1>x</h1><form id='f' action='https://example.com/form' method='post'></form>",
    ),
    "blank": "<html><body></body></html>",
    "tall": page(body="<div style='height:40000px;background:linear-gradient(red,blue)'></div>"),
    "longer_than_the_viewport": page(
        body="<div style='height:1500px;background:linear-gradient(red,blue)'></div>"
    ),
}

DEADLINE = 8.0


@pytest.fixture(scope="module")
def rendered(libraries):
    """Render everything once, together, in one browser (as a worker does)."""
    from proctor_jobs.render.farm import BrowserFarm

    listener = Listener()
    settings = RenderSettings(deadline_s=DEADLINE, network_idle_s=3.0, max_page_height=4000)
    pages = {**HOSTILE, **PAGES, "phone_home": phone_home_page(listener.port)}

    async def main():
        async with BrowserFarm(concurrency=6) as farm:

            async def one(name, html):
                started = time.monotonic()
                result = await farm.render(html, libraries, settings)
                return name, result, time.monotonic() - started

            # The well-behaved pages first, then the hostile ones together (they burn CPU until
            # their deadline and would starve the others on a small machine).
            calm = await asyncio.gather(*(one(n, h) for n, h in pages.items() if n not in HOSTILE))
            wild = await asyncio.gather(*(one(n, h) for n, h in pages.items() if n in HOSTILE))
            return {name: (result, seconds) for name, result, seconds in calm + wild}, farm.isolation

    try:
        results, isolation = asyncio.run(main())
        time.sleep(0.5)  # anything in flight would have arrived by now
        yield {"results": results, "seen": list(listener.seen), "port": listener.port, "isolation": isolation}
    finally:
        listener.close()


def test_no_request_leaves_the_machine(rendered):
    assert rendered["seen"] == [], f"the listener was reached: {rendered['seen']}"
    result, _ = rendered["results"]["phone_home"]
    blocked = result.network.blocked_urls
    port = rendered["port"]
    for path in ("style.css", "script.js", "img.png", "fetch", "xhr", "beacon", "frame", "away"):
        assert any(url.endswith(f":{port}/{path}") for url in blocked), (
            f"/{path} not recorded as blocked: {blocked}"
        )
    assert any(url.startswith(f"ws://127.0.0.1:{port}/ws") for url in blocked)
    assert result.screenshots and not result.infrastructure  # the page itself still rendered


def test_network_isolation_layers_are_reported(rendered):
    assert "request-interception" in rendered["isolation"] and "blackhole-proxy" in rendered["isolation"]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_hostile_page_ends_as_a_result_within_its_deadline(rendered, name):
    from proctor_jobs.render.artifacts import RECORD_GRACE_S

    result, seconds = rendered["results"][name]
    # The result is back within the stated grace after the deadline (+ 2 s for a loaded machine),
    # which starts once the page's slot is open; a hung page's context is closed afterwards.
    before = result.timings.get("waited_s", 0) + result.timings.get("slot_s", 0)
    assert 0 <= before < seconds
    assert seconds - before < DEADLINE + RECORD_GRACE_S + 2, f"{name} took {seconds:.1f} s"
    assert result.status in ("ok", "timeout", "crashed")
    assert not result.infrastructure, f"{name} broke the browser: {result.reason}"
    if result.status != "ok":
        assert result.reason


def test_hung_pages_time_out_with_the_reason(rendered):
    for name in ("infinite_loop", "alert_loop"):
        result, _ = rendered["results"][name]
        assert result.status == "timeout" and "stopped responding" in result.reason


def test_popups_dialogs_and_navigations_are_contained(rendered):
    spam, _ = rendered["results"]["window_open_spam"]
    assert spam.status == "ok" and spam.popups >= 400 and len(spam.screenshots) == 3
    away, _ = rendered["results"]["navigation_away"]
    assert away.status == "ok" and len(away.network.navigations_blocked) == 2
    assert not any(is_blank(png) for png in away.screenshots)  # still our page, not an error page
    refresh, _ = rendered["results"]["meta_refresh"]
    assert refresh.status == "ok" and refresh.network.reloads_blocked >= 1 and len(refresh.screenshots) == 3
    refresh_away, _ = rendered["results"]["meta_refresh_away"]
    assert refresh_away.network.navigations_blocked == ["https://example.com/"]


def test_a_page_that_navigates_while_it_loads_is_still_rendered(rendered):
    result, _ = rendered["results"]["navigates_while_loading"]
    assert result.status == "ok", result.reason
    assert len(result.screenshots) == 3 and not is_blank(result.screenshots[0])
    assert result.network.navigations_blocked == ["https://example.com/form"]


def test_libraries_come_from_the_cache_with_semver_and_the_rest_is_blocked(rendered):
    result, _ = rendered["results"]["react_from_cdn"]
    served = result.network.served
    assert any(label.startswith("react@18.3.1/umd/") for label in served)
    assert any(label.startswith("react-dom@18.3.1/umd/") for label in served)
    assert any("react-dom/18.2.0" in url for url in result.network.substitutions)  # 18.2.0 -> cached 18.3.1
    assert result.network.blocked_urls == ["https://fonts.googleapis.com/nothing.js"]
    assert result.page_errors_total == 0 and not is_blank(result.screenshots[0])


def test_defaults_three_screenshots_blank_detection_and_height_cap(rendered):
    blank, _ = rendered["results"]["blank"]
    assert len(blank.screenshots) == 3 and all(is_blank(png) for png in blank.screenshots)
    tall, _ = rendered["results"]["tall"]
    import io

    from PIL import Image

    def sizes(name: str) -> set[tuple[int, int]]:
        return {Image.open(io.BytesIO(png)).size for png in rendered["results"][name][0].screenshots}

    assert sizes("tall") == {(1280, 4000)} and tall.page_height >= 40000
    assert any("cut at 4000 px" in note for note in tall.notes)
    # Full page: the whole document when it is longer than the viewport, the viewport when it fits.
    longer, _ = rendered["results"]["longer_than_the_viewport"]
    assert longer.page_height >= 1500 and sizes("longer_than_the_viewport") == {(1280, longer.page_height)}
    assert sizes("blank") == {(1280, 720)} and sizes("react_from_cdn") == {(1280, 720)}


def _chromium_children() -> list[int]:
    """Chromium browser processes started (through Playwright's driver) by this test process."""
    me, found = os.getpid(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if not any(b"--remote-debugging-pipe" in part for part in cmdline):
                continue
            parent = int(pid)
            for _ in range(8):  # walk up to this process
                parent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent == me:
                    found.append(int(pid))
                    break
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_a_crashed_browser_fails_the_item_with_the_reason_and_is_replaced(libraries):
    from proctor_jobs.render.farm import BrowserFarm

    settings = RenderSettings(deadline_s=15.0, network_idle_s=2.0, interval_s=2.0)
    page = "<html><body><h1>slow</h1></body></html>"

    async def main():
        async with BrowserFarm(concurrency=2) as farm:
            victim = asyncio.ensure_future(farm.render(page, libraries, settings))
            while farm.renders == 0 or not _chromium_children():  # on a loaded machine, launch is slow
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.5)  # the page is between screenshots
            for pid in _chromium_children():
                os.kill(pid, signal.SIGKILL)
            crashed = await victim
            after = await farm.render(page, libraries, RenderSettings(deadline_s=15.0))
            return crashed, after, farm.launches

    crashed, after, launches = asyncio.run(main())
    assert crashed.status in ("crashed", "error") and crashed.infrastructure and crashed.reason
    assert after.status == "ok" and len(after.screenshots) == 3
    assert launches == 2
