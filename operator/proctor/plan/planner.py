"""Plan a run: which stages, how many shards each, and the manifest of every shard.

Every stage is sharded identically (shard i of stage k+1 holds the same items as shard i of stage
k), so a shard of a later stage can start as soon as the same shard upstream is done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from proctor_jobs.benchmarks import Benchmark, StageInfo
from proctor_jobs.layout import RunLayout
from proctor_jobs.manifest import ShardManifest, config_hash
from proctor_jobs.store.base import Store


@dataclass
class StagePlan:
    name: str
    kind: str
    shards: int
    items: int
    upstream: str | None
    config: dict[str, Any]
    config_hash: str
    needs_judge: bool = False
    per_item_jobs: bool = False
    skip_reason: str | None = None

    @property
    def runs(self) -> bool:
        return self.skip_reason is None


@dataclass
class Plan:
    run_prefix: str
    benchmark: str
    shard_size: int
    total_items: int
    stages: list[StagePlan]
    inputs: dict[str, str] = field(default_factory=dict)  # role -> sha256
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_prefix)

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    @property
    def active_stages(self) -> list[StagePlan]:
        return [s for s in self.stages if s.runs]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        stages = [StagePlan(**s) for s in data.pop("stages")]
        return cls(stages=stages, **data)


#: spec fields that never change what an existing stage does: a run that gains (or loses) an additional
#: judge, an aggregate or human ratings stays the same run, so its renders and first judge are reused
#: and only the new judge's stage works (each stage's records are keyed by its own configuration)
PANEL_FIELDS = ("additionalJudges", "judgeAggregate", "humanRatings")


def run_uid(spec: dict[str, Any], inputs: dict[str, str]) -> str:
    """A local run's identity: the same spec on the same inputs resumes; anything else is a new run
    (except the judge panel's fields, see PANEL_FIELDS)."""
    identity = {k: v for k, v in spec.items() if k not in PANEL_FIELDS}
    if isinstance(identity.get("judge"), dict) and "name" in identity["judge"]:
        identity["judge"] = {k: v for k, v in identity["judge"].items() if k != "name"}
    inputs = {k: v for k, v in inputs.items() if k != "humanRatings"}
    canonical = json.dumps({"spec": identity, "inputs": inputs}, sort_keys=True, separators=(",", ":"))
    return "local-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def shard_count(items: int, shard_size: int) -> int:
    return max(1, -(-items // shard_size)) if items else 0


def plan_run(
    benchmark: Benchmark,
    spec: dict[str, Any],
    items: list[dict[str, Any]],
    run_prefix: str,
    inputs: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> tuple[Plan, list[ShardManifest]]:
    """The plan and every shard manifest; pure (no I/O)."""
    ids = [item["id"] for item in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"duplicate item id {dup!r}")
    shard_size = int((spec.get("sharding") or {}).get("shardSize", 50))
    stage_infos = benchmark.stages(spec)
    generating = bool(spec.get("candidate"))
    if generating:
        # A candidate model answers first; every later stage reads its answers from those records.
        stage_infos = [StageInfo("generate", "generate", description="candidate model answers"), *stage_infos]
    stages: list[StagePlan] = []
    manifests: list[ShardManifest] = []
    notices = []
    upstream = None
    active: set[str] = set()
    for info in stage_infos:
        reads = info.after if info.after in active else upstream
        size = 1 if info.per_item_jobs else shard_size
        config = (
            generation_config(benchmark.name, spec)
            if info.name == "generate"
            else benchmark.stage_config(info.name, spec)
        )
        plan = StagePlan(
            name=info.name,
            kind=info.kind,
            shards=shard_count(len(items), size),
            items=len(items),
            upstream=reads,
            config=config,
            config_hash=config_hash({"stage": info.name, "config": config}),
            needs_judge=info.needs_judge,
            per_item_jobs=info.per_item_jobs,
            skip_reason=info.skip_reason,
        )
        stages.append(plan)
        if not plan.runs:
            notices.append(f"stage {info.name!r} is skipped: {info.skip_reason}")
            continue
        for index in range(plan.shards):
            chunk = items[index * size : (index + 1) * size]
            manifests.append(
                ShardManifest(
                    run_prefix=run_prefix,
                    benchmark=benchmark.name,
                    stage=info.name,
                    index=index,
                    shards=plan.shards,
                    items=chunk,
                    config=config,
                    upstream=reads,
                    answers_from="generate" if generating and info.name != "generate" else None,
                    answer_field=benchmark.answer_field,
                )
            )
        active.add(info.name)
        if info.after is None or info.after not in active:
            upstream = info.name
    plan = Plan(
        run_prefix=run_prefix,
        benchmark=benchmark.name,
        shard_size=shard_size,
        total_items=len(items),
        stages=stages,
        inputs=dict(inputs or {}),
        warnings=list(warnings or []),
        notices=notices,
    )
    return plan, manifests


def added_stages(current: Plan, wanted: Plan) -> list[str]:
    """Stages `wanted` has that `current` lacks: a judge added to a run already planned (or finished)."""
    have = {s.name for s in current.stages}
    return [s.name for s in wanted.stages if s.name not in have and s.runs]


def extend_plan(
    current: Plan, wanted: Plan, manifests: list[ShardManifest]
) -> tuple[Plan, list[ShardManifest]]:
    """`current` with the stages only `wanted` has (and their manifests): a judge added to a planned run.

    The stages already planned keep their configuration, records and Jobs (a render is never redone
    for a new judge); only the new stages are added, reading what the wanted plan says they read."""
    new = set(added_stages(current, wanted))
    stages = [*current.stages, *(s for s in wanted.stages if s.name in new)]
    notices = [*current.notices, *(f"stage {name!r} added to the planned run" for name in sorted(new))]
    plan = Plan(**{**current.to_dict(), "stages": stages, "notices": notices})
    return plan, [m for m in manifests if m.stage in new]


def write_stage_manifests(store: Store, plan: Plan, manifests: list[ShardManifest]) -> None:
    """The manifests of stages added to a planned run, then the plan (last, as in write_plan)."""
    for manifest in manifests:
        store.put_json(plan.layout.shard_manifest(manifest.stage, manifest.index), manifest.to_dict())
    store.put_json(plan.layout.plan, plan.to_dict())


def generation_config(benchmark: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The generate stage's configuration: the candidate options and the benchmark whose prompts apply."""
    return {"benchmark": benchmark, "candidate": dict(spec.get("candidate") or {})}


def write_plan(store: Store, plan: Plan, manifests: list[ShardManifest], items: list[dict[str, Any]]) -> None:
    """Write the items and shard manifests, then the plan last: a visible plan means a complete one.

    Manifests are written concurrently: on S3 each is a round trip, and the first Jobs wait for them.
    """
    from concurrent.futures import ThreadPoolExecutor

    layout = plan.layout
    store.put_jsonl(layout.items, items)

    def put(manifest: ShardManifest) -> None:
        store.put_json(layout.shard_manifest(manifest.stage, manifest.index), manifest.to_dict())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, manifests))
    store.put_json(layout.plan, plan.to_dict())


def read_plan(store: Store, run_prefix: str) -> Plan | None:
    data = store.get_json_or(RunLayout(run_prefix).plan)
    return Plan.from_dict(data) if data else None
