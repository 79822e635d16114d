"""The Vision2Code render stage: the answer's program -> the candidate image, classified.

Per item: take the program out of the answer for the task's renderer (`v2c_extract.py`), look it
up in the render cache, run it on a miss — matplotlib and LaTeX in the sandbox, Excalidraw in the
browser farm — and record the image, the failure class when there is none, the blank/degenerate
checks and the pixel similarity to the reference (`images.py`, `taxonomy.py`).

A program that fails is still an evaluated item (`ok`, with `failure` set): the judge gives it the
benchmark's render-failure rating. `failed` means the renderer itself could not run (the sandbox
or the browser broke), with the reason.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import time
from functools import lru_cache
from importlib import metadata
from typing import Any

from proctor_jobs.benchmarks.base import StageContext, StageProcessor
from proctor_jobs.records import EnvironmentMissing, ItemRecord, failed, ok
from proctor_jobs.render import images, taxonomy
from proctor_jobs.render.cache import RenderCache, cache_key
from proctor_jobs.render.v2c_extract import RENDERERS, extract_program

log = logging.getLogger("proctor.render.vision2code")


def vision2code_render_config(spec: dict[str, Any]) -> dict[str, Any]:
    render = spec.get("render") or {}
    return {
        "timeout_s": float(render.get("deadlineSeconds", 30.0)),
        "latex_timeout_s": float(render.get("latexTimeoutSeconds", 60.0)),
        "latex_dpi": int(render.get("latexDpi", 144)),
        "concurrency": int(render.get("concurrency", 4)),
        "cache": bool(render.get("cache", True)),
        "memory_mb": 4096,
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


class Vision2CodeRenderer(StageProcessor):
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.concurrency = max(1, int(config.get("concurrency", 4)))
        self.item_deadline_s = max(config["timeout_s"], config["latex_timeout_s"]) + 120.0
        self.sandbox = None
        self.farm = None
        self.libraries = None
        self.cache: RenderCache | None = None
        self._lock = asyncio.Lock()
        self._environment = {
            "python": "{}.{}".format(*sys.version_info[:2]),
            "matplotlib": _version("matplotlib"),
            "numpy": _version("numpy"),
        }

    async def start(self, ctx: StageContext) -> None:
        from proctor_jobs.oracle import Sandbox
        from proctor_jobs.render.matplotlib_runner import PRELOAD

        self.cache = RenderCache(ctx.store, enabled=self.config.get("cache", True))
        hide = [str(ctx.store.root)] if hasattr(ctx.store, "root") else []
        self.sandbox = Sandbox(
            concurrency=self.concurrency, preload=PRELOAD, hide=hide, base_dir=ctx.scratch / "sandbox"
        )
        await self.sandbox.__aenter__()

    async def stop(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.close()
        if self.farm is not None:
            await self.farm.close()

    async def _ensure_farm(self):
        async with self._lock:
            if self.farm is None:
                from proctor_jobs.render.farm import BrowserFarm
                from proctor_jobs.render.libcache import ensure_cache

                self.libraries = await asyncio.get_running_loop().run_in_executor(None, ensure_cache)
                self.farm = BrowserFarm(concurrency=self.concurrency)
        return self.farm

    def _environment_for(self, renderer: str) -> dict[str, Any]:
        if renderer == "matplotlib":
            return {"timeout_s": self.config["timeout_s"], **self._environment}
        if renderer == "latex":
            return {
                "timeout_s": self.config["latex_timeout_s"],
                "dpi": self.config["latex_dpi"],
                "tex": _tex_version(),
            }
        from proctor_jobs.render.farm import chromium_version
        from proctor_jobs.render.libraries import cache_version

        return {
            "timeout_s": self.config["timeout_s"],
            "chromium": chromium_version(),
            "libcache": cache_version(),
        }

    async def process(
        self, item: dict[str, Any], upstream: ItemRecord | None, ctx: StageContext
    ) -> ItemRecord:
        renderer = item.get("renderer") or "matplotlib"
        if renderer not in RENDERERS:
            return failed(
                item["id"], "render", f"unknown renderer {renderer!r} (known: {', '.join(RENDERERS)})"
            )
        code = extract_program(item.get("answer") or "", renderer)
        width, height = (int(v) for v in item["reference_size"])
        loop = asyncio.get_running_loop()
        reference = await loop.run_in_executor(None, _reference_png, item, ctx)
        data: dict[str, Any] = {
            "code": code,
            "renderer": renderer,
            "failure": None,
            "blank": False,
            "degenerate": False,
            "similarity": None,
            "image_size": None,
            "status": None,
            "render_success": False,
        }
        if item.get("missing") or not code.strip():
            data.update(
                failure="no_output_image", status="no_output_image", inspection=images.inspect_candidate(None)
            )
            evidence = {
                "code": ctx.put_evidence(item["id"], "generated_code.txt", code.encode(), "text/plain")
            }
            return ok(item["id"], "render", reason="no program in the answer", data=data, evidence=evidence)

        environment = await loop.run_in_executor(None, self._environment_for, renderer)
        key = cache_key(code, {"renderer": renderer, "size": [width, height], **environment})
        data["cache_key"] = key
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            png = await loop.run_in_executor(None, _maybe_get, ctx.store, cached["evidence"].get("image"))
            outcome = {**cached["outcome"], "cached": True}
            evidence = dict(cached["evidence"])
        else:
            started = time.monotonic()
            png, outcome, log_doc = await self._run(renderer, code, width, height)
            outcome["duration_s"] = round(time.monotonic() - started, 3)
            outcome["cached"] = False
            if outcome.get("infrastructure_error"):
                return failed(item["id"], "render", outcome["infrastructure_error"], data={**data, **outcome})
            evidence = await loop.run_in_executor(None, self._store, ctx, item["id"], key, code, png, log_doc)
            if self.cache is not None:
                self.cache.commit(key, {"outcome": outcome, "evidence": evidence})
        data.update(outcome)
        checks = await loop.run_in_executor(None, _checks, png, reference)
        data.update(checks)
        reason = None
        if data["failure"]:
            lines = str(data.get("status") or "").strip().splitlines()
            reason = f"{data['failure']}: {lines[-1][:200] if lines else ''}"
        elif data["degenerate"]:
            reason = "blank or degenerate image: " + ", ".join(data["inspection"].get("checks_triggered", []))
        return ok(item["id"], "render", reason=reason, data=data, evidence=evidence)

    async def _run(self, renderer: str, code: str, width: int, height: int):
        require_renderer_tools(renderer)
        if renderer == "matplotlib":
            from proctor_jobs.render.matplotlib_runner import run_matplotlib

            result = await run_matplotlib(
                self.sandbox,
                code,
                width,
                height,
                self.config["timeout_s"],
                self.config.get("memory_mb", 4096),
            )
            if result.crashed:
                return None, {"infrastructure_error": result.status}, {}
            failure = None if result.png else taxonomy.python_failure(result.status)
            outcome = {
                "status": result.status,
                "failure": failure,
                "render_success": result.png is not None,
                "isolation": result.isolation or [],
            }
            log_doc = {
                "status": result.status,
                "stdout": result.stdout,
                "stderr": result.stderr,
                "duration_s": result.duration_s,
                "isolation": result.isolation,
            }
            return result.png, outcome, log_doc
        if renderer == "latex":
            from proctor_jobs.render.latex_runner import run_latex

            result = await run_latex(
                self.sandbox, code, self.config["latex_timeout_s"], self.config["latex_dpi"]
            )
            if result.crashed:
                return None, {"infrastructure_error": result.status}, {}
            png = result.png
            status = result.status
            if png is not None and images.inspect_candidate(png).get("blank"):
                png, status = None, "rendered_png_invalid: blank first page"
            failure = (
                None
                if png
                else taxonomy.latex_failure(result.log, result.status == "timeout", result.produced_pdf)
            )
            outcome = {
                "status": status,
                "failure": failure,
                "render_success": png is not None,
                "isolation": result.isolation or [],
            }
            return png, outcome, {"status": status, "compile_log": result.log, "isolation": result.isolation}
        return await self._run_excalidraw(code, width, height)

    async def _run_excalidraw(self, code: str, width: int, height: int):
        from proctor_jobs.render.excalidraw import SceneError, decode_result, scene_page, validate_scene

        try:
            scene = validate_scene(code)
        except SceneError as exc:
            status = str(exc)
            failure = taxonomy.excalidraw_failure(status)
            return None, {"status": status, "failure": failure, "render_success": False}, {"status": status}
        farm = await self._ensure_farm()
        value, page = await farm.capture(
            scene_page(scene, width, height),
            self.libraries,
            self.config["timeout_s"],
            max(width, 64),
            max(height, 64),
        )
        if value is None and page.infrastructure:  # the browser, not the scene, failed
            return None, {"infrastructure_error": f"Excalidraw renderer: {page.reason}"}, {}
        png, error = decode_result(value) if value is not None else (None, page.reason or "no result")
        status = (
            "ok" if png else ("timeout" if page.status == "timeout" else f"excalidraw_render_failed: {error}")
        )
        failure = None if png else taxonomy.excalidraw_failure(status)
        log_doc = {
            "status": status,
            "console": page.console,
            "page_errors": page.page_errors,
            "blocked_requests": list(page.network.blocked) if page.network else [],
            "libraries_served": dict(page.network.served) if page.network else {},
        }
        return (
            png,
            {
                "status": status,
                "failure": failure,
                "render_success": png is not None,
                "isolation": self.farm.isolation if self.farm else [],
            },
            log_doc,
        )

    def _store(
        self, ctx: StageContext, item_id: str, key: str, code: str, png: bytes | None, log_doc: dict
    ) -> dict:
        def put(name: str, body: bytes, content_type: str) -> str:
            if self.cache is not None and self.cache.enabled:
                return self.cache.put_file(key, name, body, content_type)
            return ctx.put_evidence(item_id, name, body, content_type)

        evidence = {"code": put("generated_code.txt", code.encode(), "text/plain; charset=utf-8")}
        if png is not None:
            evidence["image"] = put("rendered_image.png", png, "image/png")
        evidence["log"] = put("render_log.json", json.dumps(log_doc, indent=1).encode(), "application/json")
        return evidence


def _reference_png(item: dict[str, Any], ctx: StageContext) -> bytes | None:
    if item.get("reference_key"):
        return _maybe_get(ctx.store, item["reference_key"])
    value = item.get("reference_image")
    if not value:
        return None
    if value.startswith("data:"):
        value = value.split(",", 1)[1]
    return base64.b64decode(value)


def _maybe_get(store, key: str | None) -> bytes | None:
    if not key:
        return None
    try:
        return store.get_bytes(key)
    except Exception:
        return None


def _checks(png: bytes | None, reference: bytes | None) -> dict[str, Any]:
    inspection = images.inspect_candidate(png)
    out = {
        "inspection": inspection,  # the harness's candidate_inspection, verbatim
        # Flags about an image; with no image at all, `failure` says why and these stay False.
        "blank": bool(png) and bool(inspection.get("blank")),
        "degenerate": bool(png) and bool(inspection.get("is_blank_or_degenerate")),
        "image_size": [inspection["width"], inspection["height"]] if png else None,
        "similarity": None,
    }
    if png and reference:
        try:
            out["similarity"] = round(images.similarity(reference, png), 6)
        except Exception as exc:  # an unreadable reference is the task's problem, not the answer's
            out["similarity_error"] = f"{type(exc).__name__}: {exc}"
    return out


#: what each renderer needs on the machine, and the command that installs it (also `proctor doctor`'s)
LATEX_TOOLS = ("pdflatex", "pdftoppm")
LATEX_FIX = (
    "sudo apt-get install texlive-latex-base texlive-latex-recommended texlive-fonts-recommended "
    "latexmk poppler-utils"
)
MATPLOTLIB_FIX = "pip install -e '.[vision2code]'  (matplotlib)"


def require_renderer_tools(renderer: str) -> None:
    """Raise EnvironmentMissing when this machine cannot run `renderer` at all: the answer is not at
    fault, so the item is recorded as `env_error` (redone on rerun), never as a render failure."""
    import importlib.util
    import shutil

    if renderer == "latex":
        missing = [tool for tool in LATEX_TOOLS if not shutil.which(tool)]
        if missing:
            raise EnvironmentMissing(f"{', '.join(missing)} not found (LaTeX renderer)", LATEX_FIX)
    elif renderer == "matplotlib" and importlib.util.find_spec("matplotlib") is None:
        raise EnvironmentMissing("Python module 'matplotlib' not found (matplotlib renderer)", MATPLOTLIB_FIX)


@lru_cache(maxsize=1)
def _tex_version() -> str:
    import shutil
    import subprocess

    binary = shutil.which("pdflatex")
    if not binary:
        return "absent"
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.splitlines()[0][:80] if out else "unknown"
