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
        from proctor_jobs.judge.panel import judge_entries

        stages = [StageInfo("render", "render", description=self.render_description)]
        for entry in judge_entries(spec):
            # Every judge reads the render records (never another judge's): they judge side by side.
            description = self.judge_description + ("" if entry.stage == "judge" else f" ({entry.name})")
            stages.append(
                StageInfo(
                    entry.stage,
                    "judge",
                    needs_judge=True,
                    description=description,
                    skip_reason=None if entry.configured else NO_JUDGE,
                    after="render",
                )
            )
        return stages

    def stage_config(self, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
        from proctor_jobs.judge.panel import entry_for_stage, judge_spec

        entry = entry_for_stage(spec, stage)
        if entry is not None:
            from proctor_jobs.judge import judge_stage_config

            # Built from this judge's options alone: its records are reused exactly when it is unchanged.
            return judge_stage_config(self.name, judge_spec(spec, entry))
        return _load(self.render_config)(spec)

    def processor(self, stage: str, config: dict[str, Any]) -> StageProcessor:
        from proctor_jobs.judge.panel import is_judge_stage

        return _load(self.judge if is_judge_stage(stage) else self.renderer)(config)

    def aggregate(self, items, records, spec):
        return _load(self.scoring).aggregate(items, records, spec)

    def exports(self, items, records, spec):
        """The original's output files, as a one-judge run of the primary judge; with several judges,
        each additional judge's own under `judges/<name>/` (its records as the run's only judge)."""
        from proctor_jobs.judge.panel import PRIMARY_STAGE, judge_entries, judge_spec

        scoring = _load(self.scoring)
        out = scoring.exports(items, records, spec)
        for entry in judge_entries(spec)[1:]:
            if entry.stage == PRIMARY_STAGE or not records.get(entry.stage):
                continue
            only = {**records, "judge": records[entry.stage]}
            for name, data in scoring.exports(items, only, judge_spec(spec, entry)).items():
                out[f"judges/{entry.name}/{name}"] = data
        return out
