"""Synthetic finished runs for report and compare tests: items, records and evidence as the real
stages write them, without running a browser, a judge or a sandbox.

`artifactsbench_run` is shaped like the ArtifactsBench example (42 items over several domains):
full-size 1280x720 PNG screenshots in the store, three render failures (no screenshots, judged on
text only), two render notes (contained navigation, nothing to render), one unjudgeable reply and a
long render failure reason. `humanevalv_run` is shaped like the HumanEval-V example: 12 tasks x 6
samples, every second sample failing with its assertion.
"""

from __future__ import annotations

import io
from typing import Any

from proctor.plan import Plan, StagePlan
from proctor_jobs.records import ItemRecord, failed, ok

DOMAINS = [
    "Game Development-Puzzle",
    "Web Applications-Other",
    "SVG Generation-SVG Icons",
    "Data Science-Charts",
    "Simulation & Modeling-Physics",
    "Management Systems-CRM",
]
RENDER_FAILED = {"item-07", "item-19", "item-31"}
UNJUDGEABLE = "item-40"
NOTES = {"item-03": "3 navigation(s) away contained", "item-11": "1 reload(s) contained"}
LONG_REASON = (
    "the page stopped responding and the 30 s render deadline passed after 0 screenshots "
    "(an endless loop or a page too heavy to draw); the last console line was: " + "x" * 180 + " END"
)


def png(width: int, height: int, shade: int) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (240, 240, 245))
    ImageDraw.Draw(image).rectangle([40, 40, width - 40, 200], fill=(shade % 256, 90, 160))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _plan(prefix: str, benchmark: str, stages: list[StagePlan], total: int) -> Plan:
    return Plan(
        run_prefix=prefix,
        benchmark=benchmark,
        shard_size=total,
        total_items=total,
        stages=stages,
        inputs={"benchmark": "b" * 64, "answers": "a" * 64},
    )


def artifactsbench_run(
    store, prefix: str = "runs/default/ab/u1", n: int = 42, score=lambda i: (i * 37) % 101
):
    """(plan, summary, items, records) of a judged ArtifactsBench-shaped run in `store`."""
    plan = _plan(
        prefix,
        "artifactsbench",
        [
            StagePlan("render", "render", 1, n, None, {"profile": "fixed", "concurrency": 6}, "r1"),
            StagePlan("judge", "judge", 1, n, "render", {"model": "judge-x", "url": "http://j/v1"}, "j1"),
        ],
        n,
    )
    items, render, judge = [], {}, {}
    for i in range(n):
        item_id = f"item-{i:02d}"
        items.append({"id": item_id, "index": i, "class": DOMAINS[i % len(DOMAINS)], "answer": "<html>"})
        if item_id in RENDER_FAILED:
            reason = LONG_REASON if item_id == "item-07" else "the page crashed"
            render[item_id] = failed(item_id, "render", reason, data={"screenshots": []}, config_hash="r1")
        else:
            keys = []
            for k in range(3):
                key = f"cache/render/{item_id}/screenshot_{k}.png"
                store.put_bytes(key, png(1280, 720, i * 30 + k), "image/png")
                keys.append(key)
            render[item_id] = ok(
                item_id,
                "render",
                reason=NOTES.get(item_id),
                data={"screenshots": keys, "extraction": {"kind": "html"}},
                evidence={f"screenshot_{k}": key for k, key in enumerate(keys)},
                config_hash="r1",
            )
        if item_id == UNJUDGEABLE:
            judge[item_id] = failed(item_id, "judge", "unjudgeable: no score in the reply", config_hash="j1")
        else:
            verdict = f"verdict for {item_id}: the page works as asked, mostly."
            judge[item_id] = ok(
                item_id,
                "judge",
                score=float(score(i)),
                reason=verdict,
                data={"judge_reason": verdict, "text_only": item_id in RENDER_FAILED},
                config_hash="j1",
            )
    records = {"render": render, "judge": judge}
    summary = {
        "run": {"name": "ab", "namespace": "default"},
        "benchmark": "artifactsbench",
        "phase": "Succeeded",
        "items": n,
        "headline": "AVG",
        "scores": {"AVG": 50.0},
        "stages": [],
        "breakdowns": {},
        "counts": {},
    }
    return plan, summary, items, records


def humanevalv_run(
    store, prefix: str = "runs/default/hv/u1", tasks: int = 12, samples: int = 6, passes=None
) -> tuple[Plan, dict[str, Any], list[dict[str, Any]], dict[str, dict[str, ItemRecord]]]:
    """A HumanEval-V-shaped run: `passes(task, sample)` says which samples pass (default: even ones)."""
    passes = passes or (lambda t, s: s % 2 == 0)
    n = tasks * samples
    plan = _plan(
        prefix, "humanevalv", [StagePlan("oracle", "oracle", 1, n, None, {"timeout_s": 2.0}, "o1")], n
    )
    items, oracle = [], {}
    for t in range(tasks):
        for s in range(samples):
            item_id = f"hv{t:02d}/{s}"
            items.append(
                {"id": item_id, "qid": f"hv{t:02d}", "sample": s, "prediction": "def solution(): ..."}
            )
            if passes(t, s):
                oracle[item_id] = ok(item_id, "oracle", score=1.0, data={"passed": True}, config_hash="o1")
            else:
                reason = f"AssertionError: solution({t}, {s}) should be {t * s + 1}"
                oracle[item_id] = ok(
                    item_id, "oracle", score=0.0, reason=reason, data={"passed": False}, config_hash="o1"
                )
    summary = {
        "run": {"name": "hv", "namespace": "default"},
        "benchmark": "humanevalv",
        "phase": "Succeeded",
        "items": n,
        "headline": "pass@1",
        "scores": {"pass@1": 50.0},
        "stages": [],
        "breakdowns": {},
        "counts": {},
    }
    return plan, summary, items, {"oracle": oracle}
