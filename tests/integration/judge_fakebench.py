"""A test-only ArtifactsBench-shaped benchmark: a fake render stage, then the real judge stage.

The render stage draws three PNG "screenshots" per item (no browser) and writes a render record
in the rendering contract's shape, so the judge, scoring and reports run exactly as for the real
adapter. Registered under the format name "judged-fake" by the tests that use it.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw

from proctor_jobs.benchmarks.base import Benchmark, StageInfo, StageProcessor
from proctor_jobs.judge import judge_skip_reason, judge_stage_config
from proctor_jobs.judge.artifactsbench import ArtifactsBenchJudge
from proctor_jobs.records import ok
from proctor_jobs.scoring import artifactsbench as scoring


def screenshot(text: str, n: int) -> bytes:
    image = Image.new("RGB", (480, 270), (245, 245, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, 460, 60 + 40 * n], fill=(40 + 60 * n, 90, 160))
    draw.text((30, 200), f"{text} #{n}", fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class FakeRender(StageProcessor):
    concurrency = 8

    async def process(self, item, upstream, ctx):
        if "no-html" in item["answer"]:
            extraction = {"kind": "none", "reason": "no HTML or SVG in the answer"}
            return ok(item["id"], "render", data={"extraction": extraction, "screenshots": []})
        keys = [
            ctx.put_evidence(item["id"], f"screenshot_{n}.png", screenshot(item["id"], n), "image/png")
            for n in range(3)
        ]
        evidence = {f"screenshot_{n}": key for n, key in enumerate(keys)}
        data = {"extraction": {"kind": "html", "reason": "fake"}, "screenshots": keys, "blank": False}
        return ok(item["id"], "render", data=data, evidence=evidence)


class JudgedFakeBench(Benchmark):
    name = "judged-fake"
    title = "ArtifactsBench-shaped test benchmark"

    def parse_tasks(self, records, source=""):
        return records

    def parse_answers(self, records, source=""):
        return records

    def stages(self, spec):
        return [
            StageInfo("render", "render"),
            StageInfo("judge", "judge", needs_judge=True, skip_reason=judge_skip_reason(spec)),
        ]

    def work_items(self, tasks, answers, spec):
        by_index = {a["index"]: a["answer"] for a in answers or []}
        return [{**t, "id": f"task-{t['index']}", "answer": by_index.get(t["index"], "")} for t in tasks], []

    def stage_config(self, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
        return judge_stage_config("artifactsbench", spec) if stage == "judge" else {}

    def processor(self, stage, config):
        return ArtifactsBenchJudge(config) if stage == "judge" else FakeRender()

    def aggregate(self, items, records, spec):
        return scoring.aggregate(items, records, spec)

    def exports(self, items, records, spec):
        return scoring.exports(items, records, spec)
