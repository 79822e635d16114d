"""EvalRun: one evaluation of one model's answers (or a candidate model) on one benchmark."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from proctor.api.artifact import ArtifactFormat
from proctor.api.common import (
    Condition,
    LocalObjectReference,
    Model,
    ObjectMeta,
    ResourceRequirements,
    SecretKeyReference,
    Source,
)
from proctor.api.options import (
    AdditionalJudge,
    AgentOptions,
    CandidateOptions,
    HumanRatings,
    JudgeOptions,
    OracleOptions,
    RenderOptions,
    ScoringOptions,
)

# Queued: every unfinished Job waits for Kueue to admit it (spec.queueName).
RunPhase = Literal["Pending", "Queued", "Running", "Succeeded", "Failed", "Suspended"]


class InputRef(Model):
    """A benchmark or answer set: a reference to an Artifact, or a source given in place."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.artifactRef) != has(self.source)",
                    "message": "exactly one of artifactRef, source must be set",
                },
                {
                    "rule": "!has(self.source) || has(self.format)",
                    "message": "format is required with source",
                },
            ]
        }
    )

    artifact_ref: LocalObjectReference | None = None
    format: ArtifactFormat | None = None
    source: Source | None = None

    @model_validator(mode="after")
    def _one_of(self) -> InputRef:
        if (self.artifact_ref is None) == (self.source is None):
            raise ValueError("exactly one of artifactRef, source must be set")
        if self.source is not None and self.format is None:
            raise ValueError("format is required with source")
        return self


class Sharding(Model):
    shard_size: int = Field(default=50, ge=1, le=100000, description="items per shard")


class Retries(Model):
    backoff_limit_per_index: int = Field(default=2, ge=0, le=100, description="pod retries per shard")
    max_failed_indexes: int | None = Field(default=None, ge=0, description="shards allowed to fail for good")


class Timeouts(Model):
    stage_seconds: int | None = Field(
        default=None, ge=1, description="activeDeadlineSeconds of each stage Job"
    )
    wait_upstream_seconds: int = Field(
        default=86400, ge=0, description="how long a shard waits for its input"
    )


class Images(Model):
    """Worker images per stage kind; unset ones come from the operator's defaults."""

    default: str | None = None
    render: str | None = None
    judge: str | None = None
    oracle: str | None = None
    agent: str | None = None
    generate: str | None = None


class Storage(Model):
    bucket: str | None = Field(default=None, description="S3 bucket (default: the operator's)")
    prefix: str = Field(default="proctor", description="key prefix inside the bucket")
    endpoint: str | None = Field(default=None, description="S3 endpoint URL for S3-compatible stores")
    region: str | None = None
    addressing: Literal["auto", "path", "virtual"] = "auto"
    credentials_secret_ref: LocalObjectReference | None = Field(
        default=None, description="a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
    delete_data_with_run: bool = Field(
        default=False,
        description="delete the run's data from the store when the EvalRun is deleted (the operator "
        "holds a finalizer on the run until it has; a run deleted while the operator is down is "
        "cleaned up when it is back)",
    )
    delete_on_finish: bool = Field(
        default=False, description="deprecated alias of deleteDataWithRun (it never acted on finish)"
    )


class EvalRunSpec(Model):
    """What to evaluate and how; defaults reproduce the benchmarks' original harnesses."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.additionalJudges) || has(self.judge)",
                    "message": "additionalJudges needs spec.judge (the run's first judge)",
                },
                {
                    "rule": "!has(self.additionalJudges) || !has(self.judge) || self.additionalJudges.all("
                    "j, j.name != (has(self.judge.name) ? self.judge.name : 'judge'))",
                    "message": "additionalJudges: a judge's name must differ from spec.judge.name "
                    "(default `judge`)",
                },
                {
                    "rule": "(!has(self.judge) || !has(self.judge.name) || self.judge.name != 'aggregate')"
                    " && (!has(self.additionalJudges) || "
                    "self.additionalJudges.all(j, j.name != 'aggregate'))",
                    "message": "a judge cannot be named `aggregate` (the name of the judges' mean or median)",
                },
                {
                    "rule": "!has(self.judgeAggregate) || has(self.additionalJudges)",
                    "message": "judgeAggregate needs additionalJudges "
                    "(an aggregate of one judge is that judge)",
                },
            ]
        }
    )

    benchmark: InputRef
    answers: InputRef | None = Field(default=None, description="the answers to evaluate (or spec.candidate)")
    candidate: CandidateOptions | None = None
    judge: JudgeOptions | None = None
    additional_judges: list[AdditionalJudge] | None = Field(
        default=None,
        max_length=7,
        description="more judges: each judges every item in a stage of its own; scores, leaderboards "
        "and records per judge, with their agreement in summary.json and the reports. Adding one to a "
        "finished run judges only (renders and the other judges' records are reused)",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    judge_aggregate: Literal["mean", "median"] | None = Field(
        default=None,
        description="score the run by the judges' mean (or median) per item, through the benchmark's "
        "own aggregation; each judge's own scores stay beside it (`<judge>/<score>`)",
    )
    human_ratings: HumanRatings | None = Field(
        default=None, description="human ratings per item: each judge's agreement with them is reported"
    )
    render: RenderOptions = Field(default_factory=RenderOptions)
    oracle: OracleOptions = Field(default_factory=OracleOptions)
    agent: AgentOptions | None = None
    scoring: ScoringOptions = Field(default_factory=ScoringOptions)
    sharding: Sharding = Field(default_factory=Sharding)
    parallelism: int = Field(
        default=4, ge=1, le=10000, description="shards or per-item Jobs worked at once per stage; can change"
    )
    retries: Retries = Field(default_factory=Retries)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    images: Images = Field(default_factory=Images)
    queue_name: str | None = Field(default=None, description="Kueue LocalQueue; Jobs are created suspended")
    suspend: bool = False
    storage: Storage = Field(default_factory=Storage)
    runtime_class_name: str | None = Field(default=None, description="e.g. gvisor, for worker pods")
    service_account_name: str | None = None
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for worker pods")
    api_key_secret_ref: SecretKeyReference | None = None

    @model_validator(mode="after")
    def _judges(self) -> EvalRunSpec:
        named = [("spec.judge.name", self.judge.name if self.judge else None)]
        named += [(f"additionalJudges[{i}].name", j.name) for i, j in enumerate(self.additional_judges or [])]
        for where, name in named:
            if name == "aggregate":
                raise ValueError(f"{where}: a judge cannot be named `aggregate` (the judges' mean or median)")
        if not self.additional_judges:
            if self.judge_aggregate is not None:
                raise ValueError(
                    "judgeAggregate needs additionalJudges (an aggregate of one judge is that judge)"
                )
            return self
        if self.judge is None:
            raise ValueError("additionalJudges needs spec.judge (the run's first judge)")
        seen = {self.judge.name or "judge": "spec.judge.name"}
        for i, extra in enumerate(self.additional_judges):
            if extra.name in seen:
                raise ValueError(
                    f"additionalJudges[{i}].name: {extra.name!r} is already the name of {seen[extra.name]}"
                )
            seen[extra.name] = f"additionalJudges[{i}]"
        return self


class JudgeStatus(Model):
    """One judge of a run with several: its headline score and its agreement with the first judge."""

    name: str
    stage: str
    score: float | None = None
    pearson: float | None = Field(default=None, description="with the run's first judge (spec.judge)")
    spearman: float | None = None
    kendall: float | None = None


class StageStatus(Model):
    name: str
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    shards: int = 0
    shards_done: int = 0
    job: str | None = None


class CostTotal(Model):
    calls: int = Field(default=0, description="model calls, retries included")
    prompt_tokens: int = Field(default=0, description="prompt tokens the server reported (`usage`)")
    completion_tokens: int = Field(default=0, description="completion tokens the server reported")
    estimated_tokens: int = Field(
        default=0,
        description="tokens counted on Proctor's side for replies without `usage` (the judge's "
        "tokenizer, else 4 characters a token); never included in the reported counts",
    )
    images: int = Field(default=0, description="images sent to the judge (per item)")
    judge_seconds: float = Field(default=0.0, description="time spent in model calls")
    cpu_seconds: float = Field(default=0.0, description="worker CPU seconds (with reaped child processes)")
    wall_seconds: float = Field(default=0.0, description="worker wall time, summed over shards")
    bytes_written: int = Field(default=0, description="bytes the workers wrote to the store")


class StageCost(CostTotal):
    name: str
    items: int = 0


class RunCost(Model):
    final: bool = Field(
        default=False,
        description="true once the run is aggregated (from its records); false while it runs (from "
        "the workers' progress records)",
    )
    stages: list[StageCost] = Field(default_factory=list)
    total: CostTotal = Field(default_factory=CostTotal)


class ResultsRef(Model):
    artifact: str | None = None
    summary: str | None = None
    report: str | None = None
    report_html: str | None = None
    records: str | None = None


class EvalRunStatus(Model):
    phase: RunPhase = "Pending"
    benchmark: str | None = Field(default=None, description="the benchmark format being run")
    progress: str | None = Field(default=None, description="items done / total over all stages")
    score: float | None = Field(default=None, description="the benchmark's headline score")
    score_name: str | None = None
    scores: dict[str, float] = Field(
        default_factory=dict, description="the run's scores; with several judges also `<judge>/<score>`"
    )
    judges: list[JudgeStatus] = Field(default_factory=list, description="set when the run has several judges")
    stages: list[StageStatus] = Field(default_factory=list)
    cost: RunCost | None = Field(default=None, description="what the run cost so far, per stage and in total")
    results: ResultsRef | None = None
    run_prefix: str | None = Field(
        default=None, description="the run's folder in the store; set once planned (spec is then fixed)"
    )
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    start_time: str | None = None
    completion_time: str | None = None


class EvalRun(Model):
    """One evaluation: a benchmark, the answers (or a candidate model), a judge, and how to run it."""

    api_version: Literal["proctor.dev/v1alpha1"] = "proctor.dev/v1alpha1"
    kind: Literal["EvalRun"] = "EvalRun"
    metadata: ObjectMeta
    spec: EvalRunSpec
    status: EvalRunStatus | None = None
