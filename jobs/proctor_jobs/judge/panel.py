"""Several judges on one run: which judges a spec names, and the stage each one works in.

`spec.judge` is the primary judge; its stage keeps the name `judge` (and its records, so a run that
gains a second judge keeps the first one's verdicts). Each of `spec.additionalJudges` works in a
stage of its own, `judge-<name>`, reading the same render records as the primary. A judge's stage
configuration is built from its own options only (`judge_spec`), so a judge's records are reused
exactly when that judge's configuration is unchanged, whatever happens to the others.

Pure and cheap: the planner and the control plane import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRIMARY_STAGE = "judge"
#: the primary judge's name when `spec.judge.name` is not set
PRIMARY_NAME = "judge"
STAGE_PREFIX = "judge-"


@dataclass(frozen=True)
class JudgeEntry:
    name: str
    stage: str
    options: dict[str, Any]  # camelCase JudgeOptions, without `name`

    @property
    def configured(self) -> bool:
        return bool(self.options.get("url") or (self.options.get("serverRef") or {}).get("name"))

    @property
    def server_ref(self) -> str | None:
        return (self.options.get("serverRef") or {}).get("name")


def _options(judge: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in judge.items() if k != "name"}


def judge_entries(spec: dict[str, Any]) -> list[JudgeEntry]:
    """The primary judge (configured or not) first, then every additional judge, in spec order."""
    primary = spec.get("judge") or {}
    entries = [JudgeEntry(primary.get("name") or PRIMARY_NAME, PRIMARY_STAGE, _options(primary))]
    for extra in spec.get("additionalJudges") or []:
        entries.append(JudgeEntry(extra["name"], STAGE_PREFIX + extra["name"], _options(extra)))
    return entries


def judge_spec(spec: dict[str, Any], entry: JudgeEntry) -> dict[str, Any]:
    """The spec as a one-judge run with `entry` as its judge: what its stage config and scores see."""
    single = {k: v for k, v in spec.items() if k not in ("additionalJudges", "judgeAggregate")}
    single["judge"] = dict(entry.options)
    return single


def entry_for_stage(spec: dict[str, Any], stage: str) -> JudgeEntry | None:
    return next((e for e in judge_entries(spec) if e.stage == stage), None)


def is_judge_stage(stage: str) -> bool:
    return stage == PRIMARY_STAGE or stage.startswith(STAGE_PREFIX)


def several(spec: dict[str, Any]) -> bool:
    """True when the run names more than one judge."""
    return bool(spec.get("additionalJudges"))
