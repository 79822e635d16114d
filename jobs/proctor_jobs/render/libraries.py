"""The libraries the render farm serves from its local cache instead of the public CDNs.

Each entry names an npm package, the exact versions vendored (one per major line that model
answers commonly pin), and which files of the package to keep (browser builds, their CSS and fonts;
never source maps, tests or type definitions). `proctor cache build` downloads each version once
with `npm pack` from the npm registry and keeps only these files.

Changing this table changes the cache version (a hash of the table), so a stale cache is never
used: the next run builds the new one under `~/.cache/proctor/libcache-<version>/`.

`CDNJS_NAMES` maps cdnjs library names (also used by cdnjs mirrors such as BootCDN and Staticfile)
to npm packages; cdnjs lays files out flat, so paths are resolved by file name within the package.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

#: bump when the cache layout or lookup rules change incompatibly
SCHEMA = 1


@dataclass(frozen=True)
class Library:
    package: str
    versions: tuple[str, ...]
    keep: tuple[str, ...]  # glob patterns relative to the package root
    drop: tuple[str, ...] = ("*.map", "*.d.ts", "*.d.mts", "*.d.cts", "*.ts.map")
    note: str = ""


_DIST_JS = ("dist/*.js", "dist/*.mjs", "dist/*.css")

LIBRARIES: tuple[Library, ...] = (
    Library("react", ("18.3.1", "17.0.2", "16.14.0"), ("umd/*.js",)),
    Library("react-dom", ("18.3.1", "17.0.2", "16.14.0"), ("umd/react-dom.*.js",)),
    Library(
        "vue",
        ("3.5.13", "2.7.16"),
        (
            "dist/vue.global*.js",
            "dist/vue.esm-browser*.js",
            "dist/vue.runtime.global*.js",
            "dist/vue.js",
            "dist/vue.min.js",
            "dist/vue.runtime.js",
            "dist/vue.runtime.min.js",
            "dist/vue.esm.browser*.js",
        ),
    ),
    Library("@babel/standalone", ("7.29.10",), ("babel.js", "babel.min.js")),
    Library(
        "babel-standalone", ("6.26.0",), ("babel.js", "babel.min.js"), note="Babel 6, still common in answers"
    ),
    Library(
        "three",
        ("0.128.0", "0.149.0", "0.160.1", "0.170.0"),
        (
            "build/*.js",
            "build/*.cjs",
            "examples/jsm/controls/*.js",
            "examples/js/controls/*.js",
            "examples/jsm/libs/stats.module.js",
            "examples/jsm/loaders/GLTFLoader.js",
            "examples/jsm/utils/BufferGeometryUtils.js",
            "examples/jsm/geometries/*.js",
            "examples/jsm/loaders/FontLoader.js",
            "examples/fonts/helvetiker_regular.typeface.json",
        ),
    ),
    Library("chart.js", ("4.4.1", "3.9.1", "2.9.4"), _DIST_JS),
    Library(
        "d3",
        ("7.9.0", "6.7.0", "5.16.0", "4.13.0", "3.5.17"),
        ("dist/d3.js", "dist/d3.min.js", "build/d3.js", "build/d3.min.js", "d3.js", "d3.min.js"),
    ),
    Library(
        "echarts",
        ("5.6.0", "4.9.0"),
        ("dist/echarts*.js", "dist/extension/*.js", "map/js/china.js", "map/js/world.js"),
    ),
    Library("p5", ("1.11.3",), ("lib/p5.js", "lib/p5.min.js", "lib/addons/*.js")),
    Library(
        "phaser",
        ("3.90.0", "3.60.0"),
        ("dist/phaser.js", "dist/phaser.min.js", "dist/phaser-arcade-physics*.js"),
    ),
    Library(
        "pixi.js",
        ("8.5.2", "7.4.3", "6.5.10"),
        (
            "dist/pixi.js",
            "dist/pixi.min.js",
            "dist/pixi.mjs",
            "dist/pixi.min.mjs",
            "dist/browser/pixi.js",
            "dist/browser/pixi.min.js",
            "dist/browser/pixi.mjs",
            "dist/browser/pixi.min.mjs",
        ),
    ),
    Library("matter-js", ("0.20.0", "0.19.0", "0.18.0"), ("build/*.js",)),
    Library("animejs", ("3.2.2", "4.0.2"), ("lib/*.js", "dist/bundles/*.js", "dist/modules/**")),
    Library("gsap", ("3.12.5",), ("dist/*.js",)),
    Library("jquery", ("3.7.1", "2.2.4", "1.12.4"), ("dist/*.js",)),
    Library("lodash", ("4.17.21",), ("lodash.js", "lodash.min.js", "core.js", "core.min.js")),
    Library("bootstrap", ("5.3.3", "4.6.2", "3.4.1"), ("dist/**",)),
    Library(
        "bootstrap-icons",
        ("1.11.3",),
        ("font/bootstrap-icons.css", "font/bootstrap-icons.min.css", "font/fonts/*"),
    ),
    Library(
        "@tailwindcss/browser",
        ("4.1.11",),
        ("dist/*.js",),
        note="Tailwind v4 browser build; also answers cdn.tailwindcss.com",
    ),
    Library(
        "tailwindcss",
        ("2.2.19",),
        (
            "dist/tailwind.css",
            "dist/tailwind.min.css",
            "dist/base*.css",
            "dist/components*.css",
            "dist/utilities*.css",
        ),
    ),
    Library(
        "@fortawesome/fontawesome-free",
        ("6.7.2", "5.15.4"),
        ("css/*", "webfonts/*", "js/all*.js", "js/fontawesome*.js"),
    ),
    Library("font-awesome", ("4.7.0",), ("css/*", "fonts/*")),
    Library("mermaid", ("11.4.1", "10.9.3"), ("dist/mermaid.min.js", "dist/mermaid.js")),
    Library("plotly.js-dist-min", ("2.35.2",), ("plotly.min.js",)),
    Library("alpinejs", ("3.14.8",), ("dist/cdn.js", "dist/cdn.min.js")),
    Library("howler", ("2.2.4",), ("dist/*.js",)),
    Library(
        "leaflet", ("1.9.4",), ("dist/leaflet.js", "dist/leaflet-src.js", "dist/leaflet.css", "dist/images/*")
    ),
    Library(
        "@excalidraw/excalidraw",
        ("0.17.6",),
        ("dist/excalidraw.production.min.js", "dist/excalidraw.development.js", "dist/excalidraw-assets/**"),
        drop=("*.map", "*.d.ts", "dist/excalidraw-assets-dev/**"),
        note="the last UMD build (0.18 is ESM-only); Vision2Code's Excalidraw renderer uses it",
    ),
)

#: cdnjs (and its mirrors') library names -> npm package; font-awesome is split by major version
CDNJS_NAMES: dict[str, str] = {
    "react": "react",
    "react-dom": "react-dom",
    "vue": "vue",
    "babel-standalone": "babel-standalone",
    "babel-core": "babel-standalone",
    "three.js": "three",
    "Chart.js": "chart.js",
    "chart.js": "chart.js",
    "d3": "d3",
    "echarts": "echarts",
    "p5.js": "p5",
    "phaser": "phaser",
    "pixi.js": "pixi.js",
    "matter-js": "matter-js",
    "animejs": "animejs",
    "gsap": "gsap",
    "jquery": "jquery",
    "lodash.js": "lodash",
    "twitter-bootstrap": "bootstrap",
    "bootstrap": "bootstrap",
    "bootstrap-icons": "bootstrap-icons",
    "tailwindcss": "tailwindcss",
    "mermaid": "mermaid",
    "plotly.js": "plotly.js-dist-min",
    "alpinejs": "alpinejs",
    "howler": "howler",
    "leaflet": "leaflet",
    "font-awesome": "@fortawesome/fontawesome-free",
}


@dataclass
class Manifest:
    schema: int = SCHEMA
    libraries: list[dict] = field(default_factory=list)

    @classmethod
    def current(cls) -> Manifest:
        return cls(SCHEMA, [asdict(lib) for lib in LIBRARIES])

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def cache_version() -> str:
    """The library cache's version: the schema and a hash of the table above."""
    return f"{SCHEMA}-{Manifest.current().digest()[:10]}"


def library(package: str) -> Library | None:
    return next((lib for lib in LIBRARIES if lib.package == package), None)
