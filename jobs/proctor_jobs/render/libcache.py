"""The local library cache: browser builds of common front-end libraries, vendored from npm.

Layout (`~/.cache/proctor/libcache-<version>/`, or `$PROCTOR_LIBCACHE`):

    index.json                      {"version", "built_at", "packages": {name: {version: {...}}}}
    pkg/<package>/<version>/<path>  the kept files of each package version

`LibraryCache.lookup(package, range, path)` picks the cached version for a URL's version range
(semver; the nearest version of the same major line when none satisfies it, recorded as a
substitution) and the file for the URL's path (exact, else the usual CDN conveniences: a missing
`.min.js` served by its unminified twin, cdnjs' flat layout resolved by file name).

The cache is built on first use when missing (`ensure_cache`), with a lock so parallel workers
build it once. Building needs the npm client and the npm registry; in a cluster without egress,
bake it into the worker image (`proctor cache build` at image build time) and point
`PROCTOR_LIBCACHE` at it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import fnmatch
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from proctor_jobs.render import semver
from proctor_jobs.render.libraries import LIBRARIES, Library, cache_version

log = logging.getLogger("proctor.render.libcache")

CONTENT_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".mjs": "application/javascript; charset=utf-8",
    ".cjs": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".wasm": "application/wasm",
}


class LibraryCacheError(RuntimeError):
    """The cache is missing and cannot be built, or is damaged."""


def default_dir() -> Path:
    override = os.environ.get("PROCTOR_LIBCACHE")
    if override:
        return Path(override)
    base = Path(os.environ.get("PROCTOR_CACHE_DIR") or Path.home() / ".cache" / "proctor")
    return base / f"libcache-{cache_version()}"


@dataclass(frozen=True)
class Resolved:
    package: str
    version: str
    path: str  # inside the package
    file: Path
    substituted: bool  # the URL asked for a version the cache does not hold

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.file.suffix.lower(), "application/octet-stream")

    @property
    def label(self) -> str:
        return f"{self.package}@{self.version}/{self.path}"


class LibraryCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        index = self.root / "index.json"
        try:
            self.index = json.loads(index.read_text())
        except (OSError, ValueError) as exc:
            raise LibraryCacheError(f"no usable library cache at {self.root}: {exc}") from exc
        self.version = self.index.get("version", "")
        self.packages: dict[str, dict[str, dict]] = self.index.get("packages", {})

    def versions(self, package: str) -> list[str]:
        return sorted(self.packages.get(package, {}), key=semver.Version.parse)

    def choose_version(self, package: str, spec: str | None) -> tuple[str | None, bool]:
        versions = list(self.packages.get(package, {}))
        if not versions:
            return None, False
        exact = semver.best_match(versions, spec)
        if exact:
            return exact, False
        if spec:
            near = semver.nearest(versions, spec)
            if near:
                return near, True
        return None, False

    def lookup(self, package: str, spec: str | None, path: str, cdn: str = "unpkg") -> Resolved | None:
        version, substituted = self.choose_version(package, spec)
        if version is None:
            return None
        meta = self.packages[package][version]
        files: list[str] = meta["files"]
        path = path.strip("/")
        if path.startswith("./"):
            path = path[2:]
        if not path:
            # A bare `pkg@version` URL: the file the CDN would pick, if the cache kept it, else the
            # browser build chosen at build time.
            candidates = [*_default_entries(meta, cdn), meta.get("default")]
            path = next((c for c in candidates if c and _find_file(set(files), c)), "")
            if not path:
                return None
        found = _find_file(set(files), path)
        if found is None:
            return None
        return Resolved(package, version, found, self.root / "pkg" / package / version / found, substituted)


def _default_entries(meta: dict, cdn: str) -> list[str]:
    """The package.json fields a CDN reads for a bare `pkg@version` URL, in its order."""
    fields = (
        ("jsdelivr", "unpkg", "browser", "main")
        if cdn == "jsdelivr"
        else ("unpkg", "jsdelivr", "browser", "main")
    )
    entries = meta.get("entries", {})
    return [entries[f].lstrip("./") for f in fields if isinstance(entries.get(f), str) and entries[f]]


_PREFERRED_DIRS = ("dist/", "build/", "lib/", "umd/", "css/", "")


def _find_file(files: set[str], path: str) -> str | None:
    candidates = [path]
    if path.endswith(".min.js"):
        candidates += [path[: -len(".min.js")] + ".js", path[: -len(".min.js")] + ".prod.js"]
    elif path.endswith(".js"):
        candidates.append(path[: -len(".js")] + ".min.js")
    elif path.endswith(".min.css"):
        candidates.append(path[: -len(".min.css")] + ".css")
    elif path.endswith(".css"):
        candidates.append(path[: -len(".css")] + ".min.css")
    elif "." not in path.rsplit("/", 1)[-1]:
        candidates += [path + ".js", path + "/index.js", path + ".min.js"]
    for candidate in candidates:
        if candidate in files:
            return candidate
    # cdnjs and its mirrors flatten paths (three.js/r128/three.min.js is build/three.min.js on npm)
    for candidate in candidates:
        tail = candidate.rsplit("/", 1)[-1]
        subdir = candidate.rsplit("/", 1)[0] + "/" if "/" in candidate else ""
        matches = [f for f in files if f == tail or f.endswith("/" + tail)]
        if subdir:
            narrowed = [f for f in matches if f.endswith("/" + subdir + tail) or f == subdir + tail]
            matches = narrowed or matches
        if matches:
            return min(matches, key=lambda f: (_dir_rank(f), len(f), f))
    return None


def _dir_rank(path: str) -> int:
    for rank, prefix in enumerate(_PREFERRED_DIRS):
        if path.startswith(prefix):
            return rank
    return len(_PREFERRED_DIRS)


# --------------------------------------------------------------------------------------------------
# building


def _keep(path: str, lib: Library) -> bool:
    if any(fnmatch.fnmatch(path, pattern) for pattern in lib.drop):
        return False
    for pattern in lib.keep:
        if pattern.endswith("/**"):
            if path.startswith(pattern[:-3] + "/"):
                return True
        elif fnmatch.fnmatch(path, pattern) and path.count("/") == pattern.count("/"):
            return True
    return False


def _npm_pack(spec: str, dest: Path, attempts: int = 4) -> Path:
    """Download one package tarball with the npm client (its registry, proxy and auth settings)."""
    delay = 2.0
    last = ""
    for attempt in range(1, attempts + 1):
        proc = subprocess.run(
            ["npm", "pack", spec, "--json", "--silent", "--pack-destination", str(dest)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode == 0:
            try:
                info = json.loads(proc.stdout)
                return dest / info[0]["filename"].replace("/", "-").lstrip("@")
            except (ValueError, KeyError, IndexError):
                tarballs = sorted(dest.glob("*.tgz"), key=lambda p: p.stat().st_mtime)
                if tarballs:
                    return tarballs[-1]
        last = (proc.stderr or proc.stdout).strip()[-500:]
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    raise LibraryCacheError(f"npm pack {spec} failed after {attempts} attempts: {last}")


def _extract(tarball: Path, lib: Library, target: Path) -> dict:
    kept: list[str] = []
    package_json: dict = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if name == "package.json":
                package_json = json.load(tar.extractfile(member))
                continue
            if ".." in name.split("/") or not _keep(name, lib):
                continue
            out = target / name
            out.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            kept.append(name)
    if not kept:
        raise LibraryCacheError(f"{tarball.name}: none of the files {lib.keep} are in the package")
    entries = {k: package_json.get(k) for k in ("jsdelivr", "unpkg", "browser", "main", "module")}
    entries = {k: v for k, v in entries.items() if isinstance(v, str)}
    default = next((entries[k] for k in ("unpkg", "jsdelivr", "browser", "main") if k in entries), None)
    if default and _find_file(set(kept), default.lstrip("./")) is None:
        default = None
    if default is None:  # pick the main browser build we kept
        scripts = sorted(
            (f for f in kept if f.endswith(".js")), key=lambda f: (".min." not in f, _dir_rank(f), len(f))
        )
        default = scripts[0] if scripts else kept[0]
    else:
        default = _find_file(set(kept), default.lstrip("./"))
    return {
        "files": sorted(kept),
        "entries": entries,
        "default": default,
        "bytes": sum((target / f).stat().st_size for f in kept),
    }


def build_cache(root: Path | None = None, log_fn=None, only: list[str] | None = None) -> Path:
    """Build the library cache into `root` (atomically: a half-built cache is never visible)."""
    root = Path(root or default_dir())
    say = log_fn or log.info
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=root.name + ".building-", dir=root.parent))
    packages: dict[str, dict[str, dict]] = {}
    started = time.monotonic()
    try:
        downloads = staging / "_tarballs"
        downloads.mkdir()
        for lib in LIBRARIES:
            if only and lib.package not in only:
                continue
            for version in lib.versions:
                spec = f"{lib.package}@{version}"
                tarball = _npm_pack(spec, downloads)
                meta = _extract(tarball, lib, staging / "pkg" / lib.package / version)
                packages.setdefault(lib.package, {})[version] = meta
                tarball.unlink(missing_ok=True)
                say(f"  {spec}: {len(meta['files'])} files, {meta['bytes'] / 1e6:.1f} MB")
        shutil.rmtree(downloads)
        index = {
            "version": cache_version(),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "packages": packages,
        }
        (staging / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"library cache {cache_version()} built in {time.monotonic() - started:.0f} s at {root}")
    return root


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cache_status(root: Path | None = None) -> dict:
    root = Path(root or default_dir())
    status = {"path": str(root), "expected_version": cache_version(), "present": False}
    try:
        cache = LibraryCache(root)
    except LibraryCacheError as exc:
        status["error"] = str(exc)
        return status
    size = sum(meta.get("bytes", 0) for versions in cache.packages.values() for meta in versions.values())
    status.update(
        present=True,
        version=cache.version,
        current=cache.version == cache_version(),
        built_at=cache.index.get("built_at"),
        packages={name: sorted(v, key=semver.Version.parse) for name, v in sorted(cache.packages.items())},
        megabytes=round(size / 1e6, 1),
    )
    return status


_LOADED: dict[Path, LibraryCache] = {}


def ensure_cache(root: Path | None = None, build: bool = True) -> LibraryCache:
    """The library cache, built first when it is missing (once per machine, under a lock)."""
    root = Path(root or default_dir())
    if root in _LOADED:
        return _LOADED[root]
    try:
        cache = LibraryCache(root)
    except LibraryCacheError:
        if not build:
            raise
        with _lock(root.parent / f".{root.name}.lock"):
            try:
                cache = LibraryCache(root)  # another process built it while we waited
            except LibraryCacheError:
                log.warning("library cache missing at %s: building it from the npm registry", root)
                build_cache(root)
                cache = LibraryCache(root)
    _LOADED[root] = cache
    return cache


def read_bytes(resolved: Resolved) -> bytes:
    with open(resolved.file, "rb") as handle:
        return handle.read()
