"""Hostile render cases: adversarial answers rendered through the real ArtifactsBench render stage.

A case (a YAML file under `tests/hostile/render/`) is an answer written by an adversary and what a
safe outcome is:

```yaml
name: wasm-4gb
target: render
attack: grows a WebAssembly.Memory to 4 GB
answer: |
  ```html
  ...
  ```
expect: {recorded: true, reason_contains: memory}
```

`run_render_cases` renders every answer through `ArtifactRenderer.process` (extraction, the farm,
the evidence store: what the render stage does for a real item), all cases through one stage
(`CONCURRENCY` pages at a time) on either render clock, and checks each case's `expect` block.
`{canary_port}` in an answer is replaced by the port of a loopback listener the caller runs (it must
see nothing). Expectations:

| key | the case is safe when |
|---|---|
| `recorded` | a record exists and carries the extraction and the page (`html` evidence) |
| `status` | the record's status is this (`ok`/`failed`) or one of this list |
| `render_status` | `data.render_status` is one of this list (`ok`, `timeout`, `crashed`, `error`) |
| `within_deadline` | the record is ready by deadline + `RECORD_GRACE_S` + `TOLERANCE_S` from render start |
| `max_screenshot_pixels`, `max_screenshot_bytes` | every screenshot is at most this large |
| `min_screenshots` | at least this many screenshots were taken |
| `reason_contains` | the reason or a note contains this text (or one of this list; case-insensitive) |
| `blocked_contains` | a blocked request or navigation contains this text |
| `evidence_not_contains` | no stored evidence (page, log, record) contains this text |
| `next_item_renders` | after all cases, the same stage still renders an ordinary page |
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import struct
import time
from typing import Any

from proctor_jobs.benchmarks.base import StageContext
from proctor_jobs.layout import RunLayout
from proctor_jobs.manifest import ShardManifest
from proctor_jobs.records import ItemRecord
from proctor_jobs.render.artifacts import RECORD_GRACE_S, ArtifactRenderer, render_config
from proctor_jobs.store.fs import FilesystemStore

RUN = "runs/selftest/hostile-render/u1"
#: The render deadline of the hostile cases (the default is 30 s; hung pages run into it).
DEADLINE_S = 15.0
#: Pages rendered at once (the default): all cases share one browser, in waves.
CONCURRENCY = 4
#: Scheduling slack on a loaded machine, on top of the stated grace, for `within_deadline`.
TOLERANCE_S = 2.0
WARM_UP = "```html\n<!DOCTYPE html><html><body><h1>warm-up</h1></body></html>\n```"


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG header, without decoding (a screenshot may be a bomb)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        return (0, 0)
    return struct.unpack(">II", png[16:24])


def _expected(expect: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in expect.items())


async def run_render_cases(
    cases: list[dict], *, canary_port: int, scratch: pathlib.Path, clock: str = "realtime"
) -> list[dict]:
    """Render every case at once through one render stage on `clock` (`spec.render.clock`: one
    browser on the real-time clock, one per slot on the virtual one); one result dict per case."""
    scratch = pathlib.Path(scratch)
    store = FilesystemStore(scratch / "store")
    manifest = ShardManifest(RUN, "artifactsbench", "render", 0, 1, [])
    ctx = StageContext(store, RunLayout(RUN), manifest, scratch)
    config = render_config(
        {
            "render": {
                "deadlineSeconds": DEADLINE_S,
                "networkIdleSeconds": 2.0,
                "concurrency": CONCURRENCY,
                "cache": False,
                "clock": clock,
            }
        }
    )
    renderer = ArtifactRenderer(config)
    await renderer.start(ctx)
    try:
        # Start the browser first: each case's time is its own render, not Chromium's launch.
        await renderer.process({"id": "warm-up", "answer": WARM_UP}, None, ctx)
        # Cases that must show screenshots take the first slots; those that hang or burn memory
        # until their deadline come after (on a small machine they would starve the others).
        shows = [bool((case.get("expect") or {}).get("min_screenshots")) for case in cases]
        order = sorted(range(len(cases)), key=lambda i: not shows[i])
        tasks = {i: asyncio.ensure_future(_one(renderer, ctx, store, cases[i], canary_port)) for i in order}
        await asyncio.gather(*tasks.values())
        results = [tasks[i].result() for i in range(len(cases))]
        # The same stage (and browser, or its replacement) must still render an ordinary page.
        after = await renderer.process({"id": "after", "answer": WARM_UP}, None, ctx)
        survived = after.status == "ok" and bool(after.data.get("screenshots"))
        for case, result in zip(cases, results, strict=True):
            if (case.get("expect") or {}).get("next_item_renders") and not survived:
                result["escaped"] = True
                result["detail"] += f"; the next item did not render: {after.reason}"
        return results
    finally:
        await renderer.stop()


async def _one(renderer: ArtifactRenderer, ctx, store, case: dict, canary_port: int) -> dict:
    name = str(case.get("name") or "unnamed")
    port = str(canary_port)
    expect = {
        k: v.replace("{canary_port}", port) if isinstance(v, str) else v
        for k, v in (case.get("expect") or {}).items()
    }
    answer = str(case.get("answer") or "").replace("{canary_port}", port)
    started = time.monotonic()
    record: ItemRecord | None = None
    error = None
    try:
        record = await asyncio.wait_for(
            renderer.process({"id": name, "answer": answer}, None, ctx), DEADLINE_S + 120
        )
    except Exception as exc:  # an escape: the stage must always return a record
        error = f"{type(exc).__name__}: {exc}"
    seconds = round(time.monotonic() - started, 2)
    failures, outcome = _check(record, expect, store, seconds, error)
    return {
        "attack": name,
        "target": "render",
        "outcome": outcome,
        "expected": _expected(expect),
        "time_s": seconds,
        "escaped": bool(failures),
        "detail": "; ".join(failures) if failures else (record.reason or "" if record else ""),
    }


def _check(
    record: ItemRecord | None, expect: dict, store, seconds: float, error: str | None
) -> tuple[list[str], str]:
    if record is None:
        return [f"no record: {error}"], f"no record ({error})"
    data = record.data
    shots = [store.get_bytes(key) for key in data.get("screenshots") or []]
    sizes = [_png_size(png) for png in shots]
    largest = max(sizes, key=lambda s: s[0] * s[1], default=(0, 0))
    outcome = (
        f"{record.status}/{data.get('render_status')}: {len(shots)} screenshots"
        + (f", {largest[0]}x{largest[1]}" if shots else "")
        + f", {seconds:.1f} s ({float((data.get('timings') or {}).get('waited_s') or 0):.1f} s waiting)"
    )
    failures: list[str] = []
    texts = [record.reason or "", *(data.get("notes") or [])]

    def want(condition: bool, message: str) -> None:
        if not condition:
            failures.append(message)

    if expect.get("recorded"):
        want(
            "extraction" in data and "html" in record.evidence,
            f"the record lacks its extraction or page (evidence: {sorted(record.evidence)})",
        )
    if "status" in expect:
        allowed = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
        want(record.status in allowed, f"status {record.status} not in {allowed}")
    if "render_status" in expect:
        allowed = expect["render_status"]
        allowed = allowed if isinstance(allowed, list) else [allowed]
        status = data.get("render_status")
        want(status in allowed, f"render_status {status} not in {allowed}")
    if expect.get("within_deadline"):
        limit = DEADLINE_S + RECORD_GRACE_S + TOLERANCE_S
        timings = data.get("timings") or {}
        # The deadline starts once the item's slot is open (waiting for it and opening it are the
        # machine's time).
        before = float(timings.get("waited_s") or 0.0) + float(timings.get("slot_s") or 0.0)
        rendering = seconds - before
        want(rendering <= limit, f"its record took {rendering:.1f} s after its render started > {limit:g} s")
    if "max_screenshot_pixels" in expect:
        limit = int(expect["max_screenshot_pixels"])
        want(
            all(w * h <= limit and w * h > 0 for w, h in sizes),
            f"screenshot sizes {sizes} exceed {limit} px (or are unreadable)",
        )
    if "max_screenshot_bytes" in expect:
        limit = int(expect["max_screenshot_bytes"])
        want(all(len(png) <= limit for png in shots), f"screenshot bytes {[len(p) for p in shots]} > {limit}")
    if "min_screenshots" in expect:
        want(len(shots) >= int(expect["min_screenshots"]), f"{len(shots)} screenshots")
    if "reason_contains" in expect:
        wanted = expect["reason_contains"]
        needles = [str(n).lower() for n in (wanted if isinstance(wanted, list) else [wanted])]
        want(
            any(n in t.lower() for n in needles for t in texts),
            f"none of {needles} in the reason or notes: {texts}",
        )
    if "blocked_contains" in expect:
        needle = str(expect["blocked_contains"])
        blocked = [*(data.get("blocked_requests") or [])]
        want(any(needle in url for url in blocked), f"no blocked request with {needle!r}: {blocked[:5]}")
    if "evidence_not_contains" in expect:
        needle = str(expect["evidence_not_contains"]).encode()
        stored = [store.get_bytes(k) for n, k in record.evidence.items() if not n.startswith("screenshot_")]
        stored.append(json.dumps(record.to_dict()).encode())
        want(not any(needle in body for body in stored), f"{needle!r} found in the evidence")
    return failures, outcome
