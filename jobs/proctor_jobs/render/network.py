"""The hermetic network layer: every request a rendered page makes is answered here or blocked.

Three layers, so that no single browser quirk lets a request out:

1. Request interception (`HermeticRouter`, one per page): the artifact itself is served from
   memory at `PAGE_URL`; library URLs on public CDNs (see `cdn.py`) are served from the local
   library cache; everything else is aborted and listed in the record as a blocked request. A
   navigation away from the page (a link, `location.href = …`, a form post, a meta refresh, a
   reload loop) is answered with `204 No Content`, which makes the browser stay on the page.
   WebSockets are intercepted too and never connected.
2. Browser flags (`CHROMIUM_NETWORK_FLAGS`): all connections go to a black-hole proxy (even
   loopback ones), hostnames never resolve, WebRTC may not use UDP — this covers what interception
   cannot see (preconnect, DNS prefetch, WebRTC).
3. A network namespace (`netns_wrapper`): where the platform allows it, Chromium runs in its own
   empty network namespace, so there is no interface to leave by at all. Playwright talks to
   Chromium over a pipe, which a network namespace does not affect.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from proctor_jobs.render import cdn
from proctor_jobs.render.libcache import LibraryCache

log = logging.getLogger("proctor.render.network")

PAGE_ORIGIN = "https://artifact.localhost"
PAGE_URL = f"{PAGE_ORIGIN}/index.html"

#: Connections the interception layer does not see (preconnect, DNS prefetch, WebRTC) go nowhere.
CHROMIUM_NETWORK_FLAGS = [
    "--proxy-server=socks5://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-domain-reliability",
    "--no-pings",
    "--dns-prefetch-disable",
]

MAX_BLOCKED = 200


@dataclass
class NetworkLog:
    blocked: OrderedDict[str, int] = field(default_factory=OrderedDict)  # url -> times
    served: OrderedDict[str, int] = field(default_factory=OrderedDict)  # package@version/path -> times
    substitutions: dict[str, str] = field(default_factory=dict)  # requested url -> served label
    navigations_blocked: list[str] = field(default_factory=list)
    reloads_blocked: int = 0
    missing: list[str] = field(default_factory=list)  # same-origin files the answer did not provide

    def block(self, url: str) -> None:
        url = url if len(url) <= 300 else url[:297] + "..."
        if url in self.blocked:
            self.blocked[url] += 1
        elif len(self.blocked) < MAX_BLOCKED:
            self.blocked[url] = 1

    @property
    def blocked_urls(self) -> list[str]:
        return list(self.blocked)


def _without_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


class HermeticRouter:
    """Answers one page's requests: the artifact, library files, and nothing else."""

    def __init__(
        self, html: str, libraries: LibraryCache | None, extra: dict[str, tuple[bytes, str]] | None = None
    ):
        self.html = html.encode("utf-8")
        self.libraries = libraries
        self.extra = extra or {}  # same-origin path -> (body, content type), e.g. a scene file
        self.log = NetworkLog()
        self.page_loads = 0

    async def handle_route(self, route) -> None:
        request = route.request
        url = request.url
        try:
            await self._answer(route, request, url)
        except Exception as exc:  # the page may be gone already (closed context): nothing to answer
            log.debug("route for %s not answered: %s", url, exc)

    async def _answer(self, route, request, url: str) -> None:
        plain = _without_fragment(url)
        navigation = request.is_navigation_request()
        main_frame = navigation and request.frame.parent_frame is None
        if plain == PAGE_URL or (plain == PAGE_ORIGIN + "/" and self.page_loads == 0):
            if main_frame and self.page_loads > 0:
                # A reload (meta refresh, location.reload loop): keep the page that is there.
                self.log.reloads_blocked += 1
                await route.fulfill(status=204, body=b"")
                return
            if main_frame:
                self.page_loads += 1
            await route.fulfill(
                status=200, body=self.html, headers={"content-type": "text/html; charset=utf-8"}
            )
            return
        if navigation:
            # Leaving the page (or pointing a frame elsewhere): 204 makes the browser stay put.
            self.log.navigations_blocked.append(url[:300])
            self.log.block(url)
            await route.fulfill(status=204, body=b"")
            return
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == PAGE_ORIGIN:
            body = self.extra.get(parts.path)
            if body is not None:
                await route.fulfill(status=200, body=body[0], headers={"content-type": body[1]})
                return
            self.log.missing.append(parts.path)
            self.log.block(url)
            await route.fulfill(
                status=404, body=b"not part of the answer", headers={"content-type": "text/plain"}
            )
            return
        resolved = None
        wanted = cdn.parse(url)
        if wanted is not None and self.libraries is not None:
            resolved = self.libraries.lookup(wanted.package, wanted.spec, wanted.path, wanted.cdn)
        if resolved is None:
            self.log.block(url)
            await route.abort("blockedbyclient")
            return
        self.log.served[resolved.label] = self.log.served.get(resolved.label, 0) + 1
        if resolved.substituted:
            self.log.substitutions[url[:300]] = resolved.label
        await route.fulfill(
            status=200,
            path=resolved.file,  # read by the Playwright driver: the bytes never pass through Python
            headers={
                "content-type": resolved.content_type,
                "access-control-allow-origin": "*",
                "cache-control": "public, max-age=31536000, immutable",
            },
        )

    async def handle_websocket(self, ws) -> None:
        """Never connect: record the attempt and close the socket."""
        self.log.block(ws.url)
        with contextlib.suppress(Exception):
            await ws.close(code=1008, reason="blocked by Proctor: renders have no network")


# --------------------------------------------------------------------------------------------------
# The network namespace wrapper


_NETNS: tuple[str, str] | None = None  # (wrapper path, description) once probed


def _shared_wrapper(script: str) -> Path:
    """The wrapper script, one per user and content in the temp dir, shared by every render worker.

    A folder per worker (`mkdtemp`) outlived each worker — killed ones too — and piled up in
    `$TMPDIR`; one content-addressed file is written once and reused. It is trusted only if it is
    ours, not writable by others and holds exactly `script`; otherwise a private copy is used."""
    digest = hashlib.sha256(script.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"proctor-chromium-netns-{os.getuid()}-{digest}"
    if _trusted(path, script):
        return path
    staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        staging.write_text(script)
        staging.chmod(0o755)
        os.replace(staging, path)
        if _trusted(path, script):
            return path
    except OSError:
        staging.unlink(missing_ok=True)
    private = Path(tempfile.mkdtemp(prefix="proctor-chromium-")) / "chromium-netns"
    private.write_text(script)
    private.chmod(0o700)
    return private


def _trusted(path: Path, script: str) -> bool:
    try:
        info = path.lstat()
        return (
            stat.S_ISREG(info.st_mode)
            and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            and path.read_text() == script
        )
    except OSError:
        return False


def netns_wrapper(chromium: str) -> tuple[str, list[str]]:
    """An executable that starts `chromium` in an empty network namespace, if the platform allows.

    Returns (executable, isolation layers). Falls back to Chromium itself (flags and interception
    still apply) when `unshare` is missing or namespaces are not permitted (e.g. a locked-down pod,
    whose NetworkPolicy then supplies the outer wall).
    """
    global _NETNS
    layers = ["request-interception", "blackhole-proxy"]
    if os.environ.get("PROCTOR_RENDER_NETNS", "1") == "0":
        return chromium, layers
    unshare = shutil.which("unshare")
    if not unshare:
        return chromium, layers
    if _NETNS is None or _NETNS[1] != chromium:
        flags = ["--net"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--net"]
        probe = subprocess.run([unshare, *flags, "true"], capture_output=True, timeout=10, check=False)
        if probe.returncode != 0:
            _NETNS = ("", chromium)
        else:
            script = f'#!/bin/sh\nexec {unshare} {" ".join(flags)} -- "{chromium}" "$@"\n'
            _NETNS = (str(_shared_wrapper(script)), chromium)
    if _NETNS[0]:
        return _NETNS[0], [*layers, "network-namespace"]
    return chromium, layers
