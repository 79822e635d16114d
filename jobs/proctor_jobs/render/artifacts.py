"""The ArtifactsBench render stage: extraction, the render cache, the farm, the evidence.

One `ArtifactRenderer` per shard. For each item: extract the page (`extract.py`), look the page and
the render settings up in the render cache, render on a miss (`farm.py`), store the page, the
screenshots and the console/network log, and return the record the judge reads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from proctor_jobs.benchmarks.base import StageContext, StageProcessor
from proctor_jobs.records import ItemRecord, failed, ok
from proctor_jobs.render.cache import RenderCache, cache_key
from proctor_jobs.render.extract import extract
from proctor_jobs.render.page import PageResult, RenderSettings, is_blank

log = logging.getLogger("proctor.render")

#: A page's record is ready at most this long after its render deadline (`deadlineSeconds`), even
#: when the page hangs: the render stops waiting at the deadline, storing the evidence and checking
#: the screenshots takes the rest, and the hung page's context is closed afterwards in the background.
RECORD_GRACE_S = 3.0


def render_clock(render: dict[str, Any]) -> str:
    """`spec.render.clock`, else the profile's: the virtual clock for `fixed` (the same screenshots on an
    idle or a loaded machine), real time for `faithful` (the original harness's)."""
    return str(render.get("clock") or ("realtime" if render.get("profile") == "faithful" else "virtual"))


def render_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The render stage's configuration from `spec.render` (camelCase on the wire)."""
    from proctor_jobs.render.libraries import cache_version

    render = spec.get("render") or {}
    viewport = render.get("viewport") or {}
    return {
        "profile": render.get("profile", "fixed"),
        "clock": render_clock(render),
        "fps": float(render.get("fps", 60.0)),
        "screenshots": int(render.get("screenshots", 3)),
        "interval_s": float(render.get("intervalSeconds", 1.0)),
        "viewport": {"width": int(viewport.get("width", 1280)), "height": int(viewport.get("height", 720))},
        "full_page": bool(render.get("fullPage", True)),
        "max_page_height": int(render.get("maxPageHeight", 8000)),
        "max_page_width": int(render.get("maxPageWidth", 2560)),
        "deadline_s": float(render.get("deadlineSeconds", 30.0)),
        "network_idle_s": float(render.get("networkIdleSeconds", 10.0)),
        "concurrency": int(render.get("concurrency", 4)),
        "interaction": [_step(s) for s in render.get("interaction") or []],
        "cache": bool(render.get("cache", True)),
        "libcache": cache_version(),
    }


def _step(step: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in step.items() if v is not None}
    if "deltaY" in out:
        out["delta_y"] = out.pop("deltaY")
    return out


def pixel_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What changes the pixels (part of the render cache key); not the profile or concurrency."""
    keys = (
        "clock",
        "fps",
        "screenshots",
        "interval_s",
        "viewport",
        "full_page",
        "max_page_height",
        "max_page_width",
        "deadline_s",
        "network_idle_s",
        "interaction",
        "libcache",
    )
    return {k: config.get(k) for k in keys}


class ArtifactRenderer(StageProcessor):
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.concurrency = max(1, int(config.get("concurrency", 4)))
        self.settings = RenderSettings.from_config(config)
        # The worker's safety net; the render enforces its own, tighter deadline.
        self.item_deadline_s = self.settings.deadline_s + 120.0
        self.farm = None
        self.libraries = None
        self.library_note: str | None = None
        self.chromium = "unknown"
        self.cache: RenderCache | None = None
        self._setup_lock = asyncio.Lock()

    async def start(self, ctx: StageContext) -> None:
        self.cache = RenderCache(ctx.store, enabled=self.config.get("cache", True))

    async def _ensure_farm(self) -> None:
        """Start Chromium and load the library cache on the first cache miss (a run whose pages
        are all cached never starts a browser)."""
        async with self._setup_lock:
            if self.farm is not None:
                return
            from proctor_jobs.render.farm import BrowserFarm, chromium_version
            from proctor_jobs.render.libcache import LibraryCacheError, ensure_cache

            loop = asyncio.get_running_loop()
            try:
                self.libraries = await loop.run_in_executor(None, ensure_cache)
            except (LibraryCacheError, OSError) as exc:
                self.library_note = f"library cache unavailable, CDN libraries blocked: {exc}"
                log.error("%s", self.library_note)
            self.chromium = await loop.run_in_executor(None, chromium_version, self._browser_path())
            self.farm = BrowserFarm(concurrency=self.concurrency, clock=self.settings.clock)

    def _clock_record(self, frames: int | None = None, skipped: int | None = None) -> dict[str, Any]:
        """How page time ran: `realtime` (the wall clock) or `virtual` (fixed frames, see page.py)."""
        record: dict[str, Any] = {"mode": self.settings.clock}
        if self.settings.clock == "virtual":
            record["fps"] = self.settings.fps
            if frames is not None:
                record["frames"] = frames
            if skipped is not None:
                record["framesSkipped"] = skipped  # of those, quiet frames not begun (page.py)
        return record

    def _browser_path(self) -> str:
        from proctor_jobs.render.farm import browser_path

        return browser_path(self.settings.clock)

    async def _browser_version(self) -> str:
        if self.chromium == "unknown":
            from proctor_jobs.render.farm import chromium_version

            try:
                self.chromium = await asyncio.get_running_loop().run_in_executor(
                    None, chromium_version, self._browser_path()
                )
            except FileNotFoundError:
                pass
        return self.chromium

    async def stop(self) -> None:
        if self.farm is not None:
            await self.farm.close()

    async def process(
        self, item: dict[str, Any], upstream: ItemRecord | None, ctx: StageContext
    ) -> ItemRecord:
        answer = _valid_text(item.get("answer") or "")
        extraction = extract(answer, self.config.get("profile", "fixed"))
        data: dict[str, Any] = {
            "extraction": extraction.to_record(),
            "screenshots": [],
            "blank": False,
            "console_errors": 0,
            "page_errors": 0,
            "blocked_requests": [],
            "timings": {},
            "cache_key": None,
            "cached": False,
            "clock": self._clock_record(),
        }
        if item.get("missing"):
            data["extraction"]["reason"] = "no answer for this task"
        if extraction.kind == "none" or extraction.html is None:
            why = "no answer for this task" if item.get("missing") else extraction.reason
            evidence = await asyncio.get_running_loop().run_in_executor(
                None, self._store_unrendered, ctx, item["id"], answer, why
            )
            return ok(item["id"], "render", reason=f"nothing to render: {why}", data=data, evidence=evidence)

        key = cache_key(
            extraction.html, {**pixel_settings(self.config), "chromium": await self._browser_version()}
        )
        data["cache_key"] = key
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            data.update(cached["data"])
            data["extraction"] = extraction.to_record()  # the same page may come from another profile
            data["cached"] = True
            done = ok if cached.get("status", "ok") == "ok" else failed
            if done is ok:
                return ok(
                    item["id"],
                    "render",
                    reason=cached.get("reason"),
                    data=data,
                    evidence=dict(cached["evidence"]),
                )
            return failed(
                item["id"],
                "render",
                cached.get("reason") or "rendering failed",
                data=data,
                evidence=dict(cached["evidence"]),
            )

        await self._ensure_farm()
        result = await self.farm.render(extraction.html, self.libraries, self.settings)
        memory = _memory_limit_hit(result)
        if memory and memory not in result.notes:
            result.notes.append(memory)
        evidence, blank_shots = await asyncio.get_running_loop().run_in_executor(
            None, self._store_evidence, ctx, item["id"], key, extraction.html, result
        )
        data.update(self._render_data(result, evidence, blank_shots))
        data["cache_key"] = key
        reason = _reason(result, data)
        # A page that rendered, hung or crashed by itself is a fact about the answer and is cached;
        # a render the infrastructure spoiled (the browser died, Chromium would not start) is not.
        status = (
            "ok"
            if result.status == "ok" or (result.screenshots and result.status in ("timeout", "crashed"))
            else "failed"
        )
        page_caused = (
            result.status in ("ok", "timeout", "crashed") and not result.infrastructure and not result.wedged
        )
        # Rendered without the library cache: not what this key stands for, so never reused.
        if self.cache is not None and page_caused and self.libraries is not None:
            shared = {k: v for k, v in data.items() if k not in ("extraction", "cached", "cache_key")}
            self.cache.commit(
                key,
                {
                    "status": status,
                    "data": shared,
                    "evidence": evidence,
                    "reason": reason,
                    "chromium": self.chromium,
                },
            )
        if status == "ok":
            return ok(item["id"], "render", reason=reason, data=data, evidence=evidence)
        # Nothing to show the judge: the record carries the extraction, the page and the log, and
        # the judge (which accepts failed renders) judges the answer on its text, like the original.
        return failed(item["id"], "render", reason or "rendering failed", data=data, evidence=evidence)

    def _store_unrendered(self, ctx: StageContext, item_id: str, answer: str, why: str) -> dict[str, str]:
        """An answer with nothing to render still leaves evidence: the text judged, and why."""
        from proctor_jobs.render.extract import answer_text

        log_doc = {
            "status": "not rendered",
            "reason": why,
            "console": [],
            "page_errors": [],
            "blocked_requests": {},
            "timings": {},
        }
        return {
            "answer": ctx.put_evidence(
                item_id, "answer.txt", answer_text(answer).encode(), "text/plain; charset=utf-8"
            ),
            "console": ctx.put_evidence(
                item_id, "console.json", json.dumps(log_doc, indent=1).encode(), "application/json"
            ),
        }

    def _store_evidence(
        self, ctx: StageContext, item_id: str, key: str, html: str, result: PageResult
    ) -> tuple[dict[str, str], list[bool]]:
        """Write the evidence (in a thread: store writes and PNG decoding block)."""

        def put(name: str, body: bytes, content_type: str) -> str:
            if self.cache is not None and self.cache.enabled:
                return self.cache.put_file(key, name, body, content_type)
            return ctx.put_evidence(item_id, name, body, content_type)

        evidence = {"html": put("page.html", html.encode("utf-8"), "text/html; charset=utf-8")}
        for index, png in enumerate(result.screenshots):
            evidence[f"screenshot_{index}"] = put(f"screenshot_{index}.png", png, "image/png")
        net = result.network
        log_doc = {
            "status": result.status,
            "reason": result.reason,
            "console": result.console,
            "console_total": result.console_total,
            "page_errors": result.page_errors,
            "page_errors_total": result.page_errors_total,
            "blocked_requests": dict(net.blocked) if net else {},
            "navigations_blocked": net.navigations_blocked if net else [],
            "reloads_blocked": net.reloads_blocked if net else 0,
            "missing_files": net.missing if net else [],
            "libraries_served": dict(net.served) if net else {},
            "library_substitutions": net.substitutions if net else {},
            "dialogs": result.dialogs,
            "popups": result.popups,
            "notes": result.notes + ([self.library_note] if self.library_note else []),
            "timings": result.timings,
            "network_isolation": self.farm.isolation if self.farm else [],
        }
        blank_shots = []
        for index, png in enumerate(result.screenshots):
            try:
                blank_shots.append(is_blank(png))
            except Exception as exc:  # an image too large to decode is a fact, not a crash
                blank_shots.append(False)
                result.notes.append(f"screenshot_{index} not checked for blankness: {exc}")
        log_doc["notes"] = result.notes + ([self.library_note] if self.library_note else [])
        evidence["console"] = put("console.json", json.dumps(log_doc, indent=1).encode(), "application/json")
        return evidence, blank_shots

    def _render_data(
        self, result: PageResult, evidence: dict[str, str], blank_shots: list[bool]
    ) -> dict[str, Any]:
        shots = [
            evidence[k]
            for k in sorted(
                (k for k in evidence if k.startswith("screenshot_")), key=lambda k: int(k.split("_")[1])
            )
        ]
        net = result.network
        return {
            "screenshots": shots,
            "blank": bool(blank_shots) and all(blank_shots),
            "blank_screenshots": blank_shots,
            "console_errors": result.console_errors,
            "page_errors": result.page_errors_total,
            "blocked_requests": net.blocked_urls if net else [],
            "timings": result.timings,
            "render_status": result.status,
            "libraries": list(net.served) if net else [],
            "library_substitutions": net.substitutions if net else {},
            "navigations_blocked": len(net.navigations_blocked) if net else 0,
            "reloads_blocked": net.reloads_blocked if net else 0,
            "dialogs": result.dialogs,
            "popups": result.popups,
            "page_height": result.page_height,
            "page_width": result.page_width,
            "notes": result.notes + ([self.library_note] if self.library_note else []),
            "network_isolation": self.farm.isolation if self.farm else [],
            "chromium": self.chromium,
            "clock": self._clock_record(result.frames, result.frames_skipped),
        }


def _valid_text(answer: str) -> str:
    """The answer as valid Unicode: code points UTF-8 cannot carry (lone surrogates, e.g. bytes a
    lenient decoder kept) become U+FFFD, so the page, the cache key and the evidence can be written."""
    return _SURROGATES.sub("\ufffd", answer)


_SURROGATES = re.compile("[\ud800-\udfff]")


#: What V8 and Chromium say when a page runs into its memory limits (see farm.py).
MEMORY_MESSAGES = (
    "out of memory",
    "array buffer allocation failed",
    "maximum memory size exceeded",
    "webassembly.memory.grow()",
    "could not allocate memory",
    "invalid array length",
    "invalid string length",
)


def _memory_limit_hit(result: PageResult) -> str | None:
    """A note when the page's own errors show it ran into a memory limit (the page survived)."""
    for entry in [*result.page_errors, *result.console]:
        text = str(entry.get("message") or entry.get("text") or "")
        if any(m in text.lower() for m in MEMORY_MESSAGES):
            return f"the page hit a memory limit: {text.splitlines()[0][:200]}"
    return None


def _reason(result: PageResult, data: dict[str, Any]) -> str | None:
    """A short account of anything notable; None for a page that simply rendered."""
    parts = []
    if result.status != "ok":
        parts.append(result.reason or result.status)
    parts += [n for n in result.notes if n.startswith("the page hit a memory limit")]
    if data.get("blank"):
        parts.append("blank page (every screenshot is one colour)")
    if data.get("navigations_blocked"):
        parts.append(f"{data['navigations_blocked']} navigation(s) away contained")
    if data.get("reloads_blocked"):
        parts.append(f"{data['reloads_blocked']} reload(s) contained")
    if data.get("popups"):
        parts.append(f"{data['popups']} window.open call(s) contained")
    return "; ".join(parts) or None
