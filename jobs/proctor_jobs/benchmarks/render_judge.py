"""Benchmarks whose answers are rendered, then judged (ArtifactsBench, Vision2Code).

The two share their pipeline's shape — a `render` stage, then a `judge` stage that is skipped with a
notice when no judge is configured — and differ only in which renderer, judge and scoring module do
the work, named here by import path so that importing an adapter pulls in no browser or model client.
"""

from __future__ import annotations

import importlib
from typing import Any

from proctor_jobs.benchmarks.base import Benchmark, StageInfo, StageProcessor

NO_JUDGE = "no judge configured (set spec.judge.url, --judge-url, or spec.judge.serverRef)"


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


class RenderThenJudge(Benchmark):
    #: "module:function" giving the render stage's config from the spec
    render_config: str
    #: "module:Class" of the render stage's processor
    renderer: str
    #: "module:Class" of the judge stage's processor
    judge: str
    #: module with `aggregate(items, records, spec)` and `exports(items, records, spec)`
    scoring: str
    render_description: str = "render the answer"
    judge_description: str = "the judge rates the evidence"

    def stages(self, spec: dict[str, Any]) -> list[StageInfo]:
        judge = spec.get("judge") or {}
        has_judge = bool(judge.get("url") or judge.get("serverRef"))
        return [
            StageInfo("render", "render", description=self.render_description),
            StageInfo(
                "judge",
                "judge",
                needs_judge=True,
                description=self.judge_description,
                skip_reason=None if has_judge else NO_JUDGE,
            ),
        ]

    def stage_config(self, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
        if stage == "judge":
            from proctor_jobs.judge import judge_stage_config

            return judge_stage_config(self.name, spec)
        return _load(self.render_config)(spec)

    def processor(self, stage: str, config: dict[str, Any]) -> StageProcessor:
        return _load(self.judge if stage == "judge" else self.renderer)(config)

    def aggregate(self, items, records, spec):
        return _load(self.scoring).aggregate(items, records, spec)

    def exports(self, items, records, spec):
        return _load(self.scoring).exports(items, records, spec)
