"""The library cache: which npm package, version and file answers a CDN URL, and how it is built."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from proctor_jobs.render import cdn, libcache, semver
from proctor_jobs.render.libraries import Library


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("18.3.1", "18", True),
        ("18.3.1", "^18.2.0", True),
        ("18.3.1", "~18.2", False),
        ("17.0.2", "^18.2.0", False),
        ("0.128.0", "^0.128.0", True),
        ("0.149.0", "^0.128.0", False),
        ("2.9.4", ">=2 <3", True),
        ("3.9.1", "1 || 3", True),
        ("1.12.4", "1.x", True),
        ("4.4.1", "4.4.0 - 4.5", True),
        ("5.0.0-beta.1", "5", False),
        ("5.0.0-beta.1", ">=5.0.0-beta.0", True),
        ("3.7.1", "3.7.1", True),
        ("3.7.1", "3.6.0", False),
    ],
)
def test_semver_ranges(version, spec, expected):
    assert semver.satisfies(version, spec) is expected


def test_best_match_and_nearest():
    versions = ["0.128.0", "0.149.0", "0.160.1", "0.170.0"]
    assert semver.best_match(versions, None) == "0.170.0"
    assert semver.best_match(versions, "latest") == "0.170.0"
    assert semver.best_match(versions, "^0.160.0") == "0.160.1"
    assert semver.best_match(versions, "0.150.0") is None
    assert semver.nearest(versions, "0.150.0") == "0.149.0"  # closest at or below
    # a patch release of the same minor beats an older minor (three@0.160.0 with 0.149.0 and 0.160.1)
    assert semver.nearest(["0.149.0", "0.160.1"], "0.160.0") == "0.160.1"
    assert semver.nearest(["0.149.0", "0.160.1", "0.160.0-beta.1"], "0.160.0") == "0.160.1"
    assert semver.nearest(["4.3.0", "4.4.2", "4.5.0"], "4.4.0") == "4.4.2"
    assert semver.nearest(["3.7.1", "2.2.4"], "4.0.0") is None  # no other major is ever substituted


@pytest.mark.parametrize(
    ("url", "package", "spec", "path"),
    [
        (
            "https://unpkg.com/react@18/umd/react.production.min.js",
            "react",
            "18",
            "umd/react.production.min.js",
        ),
        (
            "https://cdn.jsdelivr.net/npm/@babel/standalone/babel.min.js",
            "@babel/standalone",
            None,
            "babel.min.js",
        ),
        ("https://cdn.jsdelivr.net/npm/chart.js", "chart.js", None, ""),
        (
            "https://cdnjs.cloudflare.com/ajax/libs/three.js/r128/three.min.js",
            "three",
            "0.128.0",
            "three.min.js",
        ),
        (
            "https://cdn.bootcdn.net/ajax/libs/echarts/5.4.3/echarts.min.js",
            "echarts",
            "5.4.3",
            "echarts.min.js",
        ),
        (
            "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/4.7.0/css/font-awesome.min.css",
            "font-awesome",
            "4.7.0",
            "css/font-awesome.min.css",
        ),
        ("https://code.jquery.com/jquery-3.6.0.min.js", "jquery", "3.6.0", "dist/jquery.min.js"),
        ("https://d3js.org/d3.v7.min.js", "d3", "7", "d3.min.js"),
        ("https://cdn.tailwindcss.com/3.4.1?plugins=forms", "@tailwindcss/browser", None, ""),
        ("https://cdn.plot.ly/plotly-2.27.0.min.js", "plotly.js-dist-min", "2.27.0", "plotly.min.js"),
        ("https://pixijs.download/v7.3.2/pixi.min.js", "pixi.js", "7.3.2", "pixi.min.js"),
        (
            "https://stackpath.bootstrapcdn.com/bootstrap/4.5.2/css/bootstrap.min.css",
            "bootstrap",
            "4.5.2",
            "css/bootstrap.min.css",
        ),
    ],
)
def test_cdn_urls_name_a_package_range_and_file(url, package, spec, path):
    request = cdn.parse(url)
    assert (request.package, request.spec, request.path) == (package, spec, path)


@pytest.mark.parametrize(
    "url",
    [
        "https://esm.sh/react@18",
        "https://cdn.jsdelivr.net/npm/three@0.160.0/+esm",
        "https://cdn.jsdelivr.net/gh/user/repo/file.js",
        "https://fonts.googleapis.com/css2?family=Inter",
        "https://example.com/lib.js",
        "data:text/javascript,1",
    ],
)
def test_other_urls_are_not_library_requests(url):
    assert cdn.parse(url) is None


@pytest.fixture
def tiny_cache(tmp_path: Path) -> libcache.LibraryCache:
    """A hand-made cache: three versions of a package laid out like npm's."""
    root = tmp_path / "libcache"
    packages = {}
    for version in ("0.128.0", "0.149.0", "0.160.1"):
        files = ["build/three.min.js", "build/three.module.js", "examples/jsm/controls/OrbitControls.js"]
        for name in files:
            target = root / "pkg" / "three" / version / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"// three {version} {name}\n")
        packages[version] = {
            "files": files,
            "entries": {"main": "build/three.cjs"},
            "default": "build/three.min.js",
        }
    (root / "index.json").write_text(json.dumps({"version": "test", "packages": {"three": packages}}))
    return libcache.LibraryCache(root)


def test_lookup_serves_the_version_the_url_asks_for(tiny_cache):
    found = tiny_cache.lookup("three", "^0.149.0", "build/three.min.js")
    assert (found.version, found.path, found.substituted) == ("0.149.0", "build/three.min.js", False)
    assert found.file.read_text().startswith("// three 0.149.0")
    assert found.content_type.startswith("application/javascript")


def test_lookup_resolves_cdnjs_flat_paths_and_minified_twins(tiny_cache):
    assert tiny_cache.lookup("three", "0.128.0", "three.min.js").path == "build/three.min.js"
    assert tiny_cache.lookup("three", "0.128.0", "build/three.module.min.js").path == "build/three.module.js"
    assert tiny_cache.lookup("three", None, "").path == "build/three.min.js"  # the package's default file


def test_lookup_substitutes_the_nearest_version_and_says_so(tiny_cache):
    found = tiny_cache.lookup("three", "0.150.0", "examples/jsm/controls/OrbitControls.js")
    assert (found.version, found.substituted) == ("0.149.0", True)


def test_lookup_misses_are_none(tiny_cache):
    assert tiny_cache.lookup("three", "1.0.0", "build/three.min.js") is None
    assert tiny_cache.lookup("three", "0.128.0", "examples/jsm/loaders/Nope.js") is None
    assert tiny_cache.lookup("react", "18", "umd/react.production.min.js") is None


def _fake_npm(bin_dir: Path, registry: dict[str, dict[str, str]]) -> None:
    """An `npm` on PATH whose `pack` writes tarballs from `registry` (spec -> {path: text})."""
    tarballs = bin_dir / "tarballs"
    tarballs.mkdir(parents=True)
    for spec, files in registry.items():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, text in {**files, "package.json": json.dumps({"main": "dist/lib.js"})}.items():
                data = text.encode()
                info = tarfile.TarInfo(f"package/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        (tarballs / (spec.replace("@", "-").lstrip("-") + ".tgz")).write_bytes(buffer.getvalue())
    script = bin_dir / "npm"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, shutil, sys, pathlib\n"
        "args = sys.argv[1:]; spec = args[1]\n"
        "dest = pathlib.Path(args[args.index('--pack-destination') + 1])\n"
        f"src = pathlib.Path({str(tarballs)!r}) / (spec.replace('@', '-').lstrip('-') + '.tgz')\n"
        "shutil.copy(src, dest / src.name)\n"
        "print(json.dumps([{'filename': src.name}]))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_build_keeps_only_the_browser_builds_and_writes_the_index_last(tmp_path, monkeypatch):
    registry = {
        "demo@1.0.0": {"dist/lib.js": "v1", "dist/lib.js.map": "{}", "src/index.ts": "x"},
        "demo@2.1.0": {"dist/lib.js": "v2", "dist/lib.min.js": "v2min", "README.md": "#"},
    }
    _fake_npm(tmp_path / "bin", registry)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(libcache, "LIBRARIES", (Library("demo", ("1.0.0", "2.1.0"), ("dist/*.js",)),))
    root = libcache.build_cache(tmp_path / "cache", log_fn=lambda _line: None)
    cache = libcache.LibraryCache(root)
    assert cache.versions("demo") == ["1.0.0", "2.1.0"]
    assert sorted(cache.packages["demo"]["1.0.0"]["files"]) == ["dist/lib.js"]  # no map, no source
    assert cache.lookup("demo", "^2", "").file.read_text() == "v2"
    assert not list(tmp_path.glob("cache.building-*"))  # nothing half-built is left behind


def test_a_failing_npm_fails_the_build_loudly(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text("#!/bin/sh\necho 'registry unreachable' >&2\nexit 1\n")
    (bin_dir / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(libcache, "LIBRARIES", (Library("demo", ("1.0.0",), ("dist/*.js",)),))
    monkeypatch.setattr(libcache.time, "sleep", lambda _s: None)
    with pytest.raises(libcache.LibraryCacheError, match="registry unreachable"):
        libcache.build_cache(tmp_path / "cache", log_fn=lambda _line: None)
    assert not (tmp_path / "cache").exists()
