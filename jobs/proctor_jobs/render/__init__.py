"""Rendering: answers become the evidence a judge sees (see docs/rendering.md).

ArtifactsBench: `extract` (faithful/fixed) -> `farm` (pooled Chromium, hermetic `network`, library
cache `libcache`) -> `cache` (render cache) -> `artifacts` (the stage processor). Vision2Code:
`v2c_extract` -> `matplotlib_runner` / `latex_runner` (sandboxed) or `excalidraw` (browser) ->
`images` and `taxonomy` -> `vision2code` (the stage processor). Nothing here is imported by the
control plane except the pure configuration helpers; Playwright, matplotlib and numpy are imported
only where they are used.
"""
