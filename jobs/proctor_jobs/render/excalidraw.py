"""Vision2Code's Excalidraw renderer: a validated scene, drawn by Excalidraw itself in the browser.

The scene JSON is checked first (an object with an `elements` list whose element `type`s are ones
Excalidraw knows, each with numeric geometry), so a made-up element type or a truncated file is a
classified failure rather than a silently empty drawing. The page then loads React 18 and
Excalidraw's UMD build from the library cache (its fonts too), restores the scene, and exports it
with `exportToCanvas` — Excalidraw's own renderer, as the harness's vendored renderer uses — scaled
to fit the reference image's size on the scene's background colour.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from proctor_jobs.render.wrappers import REACT_DOM_URL, REACT_URL

EXCALIDRAW_URL = "https://unpkg.com/@excalidraw/excalidraw@0.17.6/dist/excalidraw.production.min.js"

ELEMENT_TYPES = {
    "rectangle",
    "ellipse",
    "diamond",
    "line",
    "arrow",
    "freedraw",
    "text",
    "image",
    "frame",
    "magicframe",
    "embeddable",
    "iframe",
    "selection",
}
MAX_ELEMENTS = 20_000


class SceneError(ValueError):
    """The scene cannot be drawn; the message starts with its taxonomy prefix (json:, schema:, empty:)."""


def validate_scene(text: str) -> dict[str, Any]:
    try:
        scene = json.loads(text)
    except ValueError as exc:
        raise SceneError(f"json: not valid JSON ({exc})") from None
    if isinstance(scene, list):  # a bare element list is accepted, as Excalidraw's paste is
        scene = {"type": "excalidraw", "elements": scene}
    if not isinstance(scene, dict):
        raise SceneError(f"schema: expected a scene object, got {type(scene).__name__}")
    elements = scene.get("elements")
    if not isinstance(elements, list):
        raise SceneError("schema: the scene has no 'elements' list")
    if not elements:
        raise SceneError("empty: the scene has no elements")
    if len(elements) > MAX_ELEMENTS:
        raise SceneError(f"schema: {len(elements)} elements (more than {MAX_ELEMENTS})")
    unknown: set[str] = set()
    for i, element in enumerate(elements):
        if not isinstance(element, dict):
            raise SceneError(f"schema: elements[{i}] is not an object")
        kind = element.get("type")
        if kind not in ELEMENT_TYPES:
            unknown.add(str(kind))
            continue
        for key in ("x", "y", "width", "height"):
            value = element.get(key, 0)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
            ):
                raise SceneError(f"schema: elements[{i}].{key} is not a finite number")
    if unknown:
        raise SceneError(f"schema: unknown element type(s) {', '.join(sorted(unknown))}")
    if scene.get("appState") is not None and not isinstance(scene["appState"], dict):
        raise SceneError("schema: appState is not an object")
    return scene


def scene_page(scene: dict[str, Any], width: int, height: int) -> str:
    payload = base64.b64encode(json.dumps(scene).encode()).decode()
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8">
<script src="{REACT_URL}"></script>
<script src="{REACT_DOM_URL}"></script>
<script src="{EXCALIDRAW_URL}"></script>
<style>html,body{{margin:0;background:#fff}}</style></head>
<body><div id="out"></div>
<script>
(async () => {{
  try {{
    const bytes = Uint8Array.from(atob("{payload}"), c => c.charCodeAt(0));
    const scene = JSON.parse(new TextDecoder().decode(bytes));
    const lib = window.ExcalidrawLib;
    const restored = lib.restore(scene, null, null);
    const appState = Object.assign({{}}, restored.appState || {{}}, {{
      exportBackground: true,
      viewBackgroundColor: (restored.appState && restored.appState.viewBackgroundColor) || "#ffffff",
    }});
    if (document.fonts && document.fonts.ready) {{ await document.fonts.ready; }}
    const canvas = await lib.exportToCanvas({{
      elements: restored.elements || [],
      appState,
      files: restored.files || scene.files || {{}},
      getDimensions: (w, h) => {{
        const scale = Math.min({int(width)} / Math.max(w, 1), {int(height)} / Math.max(h, 1));
        const width = Math.max(1, Math.round(w * scale)), height = Math.max(1, Math.round(h * scale));
        return {{width, height, scale}};
      }},
    }});
    document.getElementById("out").appendChild(canvas);
    const png = canvas.toDataURL("image/png");
    window.__proctorResult = {{png, width: canvas.width, height: canvas.height}};
  }} catch (e) {{
    window.__proctorResult = {{error: String(e && e.stack || e)}};
  }}
}})();
</script></body></html>
"""


def decode_result(value: Any) -> tuple[bytes | None, str | None]:
    """(PNG bytes, error) from the page's `window.__proctorResult`."""
    if not isinstance(value, dict):
        return None, "the renderer returned nothing"
    if value.get("error"):
        return None, str(value["error"])[:2000]
    data = value.get("png") or ""
    if not data.startswith("data:image/png;base64,"):
        return None, "the renderer returned no PNG"
    return base64.b64decode(data.split(",", 1)[1]), None
