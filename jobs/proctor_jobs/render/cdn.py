"""Recognise library URLs on public CDNs: which npm package, which version range, which file.

Understood:

- npm CDNs: unpkg.com, cdn.jsdelivr.net/npm (and its fastly/gcore/testingcf hosts), and the npm
  mirrors answers from China use (unpkg.zhimg.com, npm.elemecdn.com, npm.onmicrosoft.cn):
  `/<package>[@<range>][/<path>]`;
- cdnjs and its mirrors (cdnjs.cloudflare.com/ajax/libs, cdn.bootcdn.net/ajax/libs,
  cdn.bootcss.com, cdn.staticfile.org / .net, lib.baomitu.com): `/<name>/<version>/<path>`;
- the libraries' own CDNs: code.jquery.com, cdn.tailwindcss.com, d3js.org, cdn.plot.ly,
  pixijs.download, threejs.org/build, use.fontawesome.com, kit.fontawesome.com,
  stackpath/maxcdn.bootstrapcdn.com, cdn.jsdelivr.net/npm/@tailwindcss/browser.

Anything else (ESM rewriting CDNs such as esm.sh and skypack, GitHub via jsDelivr, fonts, images,
APIs) is not a library request and the network layer blocks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from proctor_jobs.render.libraries import CDNJS_NAMES


@dataclass(frozen=True)
class LibraryRequest:
    package: str
    spec: str | None  # npm version or range; None for "latest"
    path: str  # inside the package ("" for the package's default file)
    cdn: str  # unpkg | jsdelivr | cdnjs | own

    def __str__(self) -> str:
        version = f"@{self.spec}" if self.spec else ""
        return f"{self.package}{version}/{self.path}"


NPM_HOSTS = {
    "unpkg.com": "unpkg",
    "www.unpkg.com": "unpkg",
    "unpkg.zhimg.com": "unpkg",
    "npm.elemecdn.com": "unpkg",
    "npm.onmicrosoft.cn": "unpkg",
    "cdn.jsdelivr.net": "jsdelivr",
    "fastly.jsdelivr.net": "jsdelivr",
    "gcore.jsdelivr.net": "jsdelivr",
    "testingcf.jsdelivr.net": "jsdelivr",
    "originfastly.jsdelivr.net": "jsdelivr",
}
CDNJS_HOSTS = {
    "cdnjs.cloudflare.com": "/ajax/libs/",
    "cdn.bootcdn.net": "/ajax/libs/",
    "cdn.bootcss.com": "/",
    "cdn.staticfile.org": "/",
    "cdn.staticfile.net": "/",
    "lib.baomitu.com": "/",
    "cdnjs.loli.net": "/ajax/libs/",
}

_PACKAGE = re.compile(r"^((?:@[^/@]+/)?[^/@]+)(?:@([^/]+))?(?:/(.*))?$")


def _npm_path(rest: str, cdn: str) -> LibraryRequest | None:
    m = _PACKAGE.match(rest)
    if not m:
        return None
    package, spec, path = m.group(1), m.group(2), m.group(3) or ""
    if path.endswith("+esm") or path.startswith("+esm"):
        return None  # jsDelivr's ESM rewriting: a different file from anything in the package
    return LibraryRequest(package, unquote(spec) if spec else None, path, cdn)


def _cdnjs_version(package: str, version: str) -> str:
    if package == "three" and re.fullmatch(r"r\d+", version):
        return f"0.{version[1:]}.0"  # three.js publishes r128 as npm 0.128.0
    return version


def parse(url: str) -> LibraryRequest | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower()
    path = unquote(parts.path)
    if host in NPM_HOSTS:
        cdn = NPM_HOSTS[host]
        if cdn == "jsdelivr":
            if not path.startswith("/npm/"):
                return None  # /gh/, /combine/, /wp/: not npm packages
            path = path[len("/npm/") :]
        return _npm_path(path.lstrip("/"), cdn)
    if host in CDNJS_HOSTS:
        prefix = CDNJS_HOSTS[host]
        if not path.startswith(prefix):
            return None
        segments = path[len(prefix) :].split("/", 2)
        if len(segments) < 2:
            return None
        name, version = segments[0], segments[1]
        rest = segments[2] if len(segments) > 2 else ""
        package = CDNJS_NAMES.get(name) or CDNJS_NAMES.get(name.lower())
        if package is None:
            return None
        if package == "@fortawesome/fontawesome-free" and version.split(".")[0] in ("4", "3"):
            package = "font-awesome"
        return LibraryRequest(package, _cdnjs_version(package, version), rest, "cdnjs")
    return _own_cdn(host, path)


def _own_cdn(host: str, path: str) -> LibraryRequest | None:
    if host == "code.jquery.com":
        m = re.fullmatch(r"/jquery-(\d+\.\d+\.\d+|latest)((?:\.slim)?(?:\.min)?\.js)", path)
        if m:
            spec = None if m.group(2) == "latest" or m.group(1) == "latest" else m.group(1)
            return LibraryRequest("jquery", spec, "dist/jquery" + m.group(2), "own")
        if path in ("/jquery.js", "/jquery.min.js"):
            return LibraryRequest("jquery", None, "dist" + path, "own")
        return None
    if host == "cdn.tailwindcss.com":
        # The Play CDN script (v3) is not on npm; Tailwind's v4 browser build is its successor.
        return LibraryRequest("@tailwindcss/browser", None, "", "own")
    if host in ("d3js.org", "www.d3js.org"):
        m = re.fullmatch(r"/d3(?:\.v(\d+))?(\.min)?\.js", path)
        if m:
            major = m.group(1)
            name = "d3" + (m.group(2) or "") + ".js"
            return LibraryRequest("d3", major, name, "own")
        return None
    if host == "cdn.plot.ly":
        m = re.fullmatch(r"/plotly-(\d+\.\d+\.\d+|latest)(?:\.min)?\.js", path)
        if m:
            spec = None if m.group(1) == "latest" else m.group(1)
            return LibraryRequest("plotly.js-dist-min", spec, "plotly.min.js", "own")
        return None
    if host == "pixijs.download":
        m = re.fullmatch(r"/v?([^/]+)/(.+)", path)
        if m:
            spec = None if m.group(1) in ("release", "latest") else m.group(1)
            return LibraryRequest("pixi.js", spec, m.group(2), "own")
        return None
    if host == "threejs.org" and path.startswith("/build/"):
        return LibraryRequest("three", None, path.lstrip("/"), "own")
    if host == "use.fontawesome.com":
        m = re.fullmatch(r"/releases/v(\d+\.\d+\.\d+)/(.+)", path)
        if m:
            return LibraryRequest("@fortawesome/fontawesome-free", m.group(1), m.group(2), "own")
        return None
    if host == "kit.fontawesome.com":
        # A kit is account-specific; the free SVG+JS build draws the same <i class="fa-..."> icons.
        return LibraryRequest("@fortawesome/fontawesome-free", "6", "js/all.min.js", "own")
    if host in ("stackpath.bootstrapcdn.com", "maxcdn.bootstrapcdn.com", "netdna.bootstrapcdn.com"):
        m = re.fullmatch(r"/(bootstrap|font-awesome)/(\d+\.\d+\.\d+)/(.+)", path)
        if m:
            package = "bootstrap" if m.group(1) == "bootstrap" else "font-awesome"
            if package == "font-awesome" and not m.group(2).startswith(("3.", "4.")):
                package = "@fortawesome/fontawesome-free"
            return LibraryRequest(package, m.group(2), m.group(3), "cdnjs")
        return None
    return None
