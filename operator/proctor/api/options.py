"""Per-stage options of an EvalRun: rendering, judging, oracle execution, candidate generation.

Each benchmark reads only the options that concern its stages; defaults reproduce the original
harnesses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from proctor.api.common import LocalObjectReference, Model, SecretKeyReference, Source

#: a judge's name: a DNS label (it names a stage and its Job); `aggregate` is taken (the judges' mean)
JUDGE_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Viewport(Model):
    width: int = Field(default=1280, ge=64, le=8192)
    height: int = Field(default=720, ge=64, le=8192)


class InteractionStep(Model):
    """One step of a scripted interaction taken between screenshots."""

    action: Literal["click", "press", "type", "scroll", "wait", "screenshot", "hover"]
    selector: str | None = None
    key: str | None = None
    text: str | None = None
    x: int | None = None
    y: int | None = None
    delta_y: int | None = None
    ms: int | None = Field(default=None, ge=0, le=60000)


class RenderOptions(Model):
    """How answers become screenshots (ArtifactsBench) or images (Vision2Code)."""

    profile: Literal["fixed", "faithful"] = Field(
        default="fixed", description="faithful: the original extraction, bugs included; fixed: corrected"
    )
    clock: Literal["realtime", "virtual"] | None = Field(
        default=None,
        description="realtime: the page runs on the wall clock (the original harness); virtual: page time "
        "advances by exactly the configured intervals at `fps` frames per second, every animation frame "
        "runs and only captured frames are drawn (deterministic; needs chromium-headless-shell). "
        "Unset: virtual for the fixed profile, realtime for faithful",
    )
    fps: float = Field(default=60.0, ge=1, le=240, description="frame rate of the virtual clock")
    screenshots: int = Field(default=3, ge=1, le=20)
    interval_seconds: float = Field(default=1.0, ge=0, le=60)
    viewport: Viewport = Field(default_factory=Viewport)
    full_page: bool = True
    max_page_height: int = Field(default=8000, ge=64, le=100000, description="cap on full-page height (px)")
    max_page_width: int = Field(default=2560, ge=64, le=16384, description="cap on screenshot width (px)")
    deadline_seconds: float = Field(
        default=30.0, gt=0, le=600, description="per-item render deadline (Vision2Code: the Python timeout)"
    )
    network_idle_seconds: float = Field(
        default=10.0, ge=0, le=600, description="longest wait for network idle before the first screenshot"
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="pages rendered at once per worker")
    interaction: list[InteractionStep] = Field(
        default_factory=list,
        description="scripted steps: a screenshot before, one per `screenshot` step, and one after",
    )
    cache: bool = Field(default=True, description="reuse evidence for an identical answer and config")
    latex_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="Vision2Code LaTeX compile limit"
    )
    latex_dpi: int = Field(default=144, ge=36, le=600, description="Vision2Code LaTeX first-page raster dpi")


class JudgeOptions(Model):
    """Which judge scores the evidence and how it is asked."""

    name: str | None = Field(
        default=None,
        max_length=20,
        pattern=JUDGE_NAME,
        description="the judge's name in scores (`<name>/<score>`) and reports when a run has several "
        "judges (default `judge`)",
    )
    server_ref: LocalObjectReference | None = Field(
        default=None, description="a JudgeServer in this namespace"
    )
    url: str | None = Field(default=None, description="an OpenAI-compatible base URL (local mode)")
    model: str | None = None
    api_key_secret_ref: SecretKeyReference | None = None
    profile: Literal["faithful", "strict"] = Field(
        default="faithful",
        description="faithful: the original request (prompt, sampling, images untouched); "
        "strict: reproducible (temperature 0, seed 0 unless set; image shrinking allowed)",
    )
    screenshots: int | None = Field(default=None, ge=0, le=20, description="screenshots sent (default: all)")
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="default: the benchmark's (ArtifactsBench 0.7, Vision2Code 0)"
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        le=65536,
        description="default: the benchmark's (ArtifactsBench none, Vision2Code 2200)",
    )
    seed: int | None = Field(default=None, description="sampling seed sent to the judge, if it supports one")
    max_attempts: int = Field(default=3, ge=1, le=10, description="judge calls per item, retries included")
    timeout_seconds: float = Field(default=300.0, gt=0, le=3600, description="per call")
    concurrency: int | None = Field(
        default=None, ge=1, le=4096, description="requests in flight per worker process (default 32)"
    )
    tokenizer: str | None = Field(default=None, description="path or URL of a tokenizer.json for truncation")
    max_prompt_tokens: int | None = Field(
        default=None, ge=1, description="prompt text budget (default: ArtifactsBench 27000, Vision2Code none)"
    )
    system_message: bool = Field(
        default=False, description="ArtifactsBench: add the system turn of the original's vLLM judge script"
    )
    rubric: Literal["dataset", "generic"] = Field(
        default="dataset", description="Vision2Code: per-dataset rubric, or the generic equal-weight baseline"
    )
    image_max_side: int | None = Field(
        default=None, ge=64, le=16384, description="downscale images to this many pixels (not in faithful)"
    )
    image_format: Literal["png", "jpeg"] = Field(
        default="png", description="re-encode images (not in faithful)"
    )
    jpeg_quality: int = Field(default=85, ge=10, le=100)
    outage_seconds: float = Field(
        default=600.0, ge=0, le=86400, description="how long items wait for an unreachable judge to return"
    )
    backoff_seconds: float = Field(
        default=1.0, ge=0, le=60, description="first retry delay (doubles, jittered)"
    )


class AdditionalJudge(JudgeOptions):
    """One more judge of the run: it judges every item too, in a stage of its own (`judge-<name>`),
    with its own endpoint, API key, budget and concurrency."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.url) != has(self.serverRef)",
                    "message": "exactly one of url, serverRef must be set",
                }
            ]
        }
    )

    name: str = Field(  # type: ignore[assignment]
        max_length=20, pattern=JUDGE_NAME, description="unique among the run's judges; names its stage"
    )

    @model_validator(mode="after")
    def _one_endpoint(self) -> AdditionalJudge:
        if (self.url is None) == (self.server_ref is None):
            raise ValueError("exactly one of url, serverRef must be set")
        return self


class HumanRatings(Model):
    """Human ratings of the run's items, to report each judge's agreement with people."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.artifactRef) != has(self.source)",
                    "message": "exactly one of artifactRef, source must be set",
                }
            ]
        }
    )

    artifact_ref: LocalObjectReference | None = Field(default=None, description="an Artifact of format jsonl")
    source: Source | None = Field(default=None, description="JSON records given in place")
    id_field: str = Field(default="id", min_length=1, description="the field holding Proctor's item id")
    rating_field: str = Field(default="rating", min_length=1, description="the field holding the rating")

    @model_validator(mode="after")
    def _one_of(self) -> HumanRatings:
        if (self.artifact_ref is None) == (self.source is None):
            raise ValueError("exactly one of artifactRef, source must be set")
        return self


class OracleOptions(Model):
    """Sandboxed execution of answers and evaluators."""

    timeout_seconds: float = Field(default=2.0, gt=0, le=345600, description="per program (HumanEval-V: 2 s)")
    memory_mb: int = Field(default=2048, ge=64, le=1048576, alias="memoryMB")
    max_processes: int = Field(default=64, ge=1, le=65536)
    max_file_mb: int = Field(default=64, ge=1, le=1048576, alias="maxFileMB")
    pylint: bool = Field(default=True, description="HumanEval-V's pylint gate (errors fail the sample)")
    verdict: Literal["harness", "in-process"] = Field(
        default="harness",
        description=(
            "HumanEval-V: `harness` runs the test script in a trusted process that calls the answer in the "
            "sandbox over plain data (the answer cannot reach the verdict); `in-process` runs answer and "
            "test in one process as the original harness does (faithful, but an answer can forge a pass)"
        ),
    )
    min_isolation: Literal["root", "userns", "none"] = Field(
        default="userns",
        description=(
            "weakest sandbox tier a run accepts: items are refused (reason `isolation_below_minimum`) "
            "where only a weaker one can be set up; `none` accepts rlimits only"
        ),
    )
    max_answer_bytes: int = Field(
        default=1048576,
        ge=1024,
        le=16777216,
        description="answers larger than this are recorded as `answer_too_large` without being run "
        "(at most 16 MiB: what the sandbox hands a program in one frame)",
    )
    concurrency: int = Field(default=0, ge=0, le=256, description="programs at once per worker (0: CPUs)")
    privileged: bool = Field(default=False, description="privileged oracle pods (some artifacts run Docker)")
    evaluator_timeout_seconds: float = Field(
        default=3600, gt=0, le=345600, description="ArtEvalBench: deadline of an artifact's evaluator run"
    )
    isolation: Literal["sandbox", "pod"] = Field(
        default="sandbox",
        description="ArtEvalBench: agent and evaluator in Proctor's sandbox, or unconfined in their own pod",
    )
    run_images_on_host: bool = Field(
        default=False,
        description="ArtEvalBench, local mode: run artifacts that name an image on this machine",
    )
    workspace_claim: str | None = Field(
        default=None, description="ArtEvalBench: a PVC for artifact workspaces (default: an emptyDir)"
    )


class AgentOptions(Model):
    """An agent phase before the oracle (ArtEvalBench): a command given the artifact's README.

    It runs in the artifact's workspace (its root is the working directory), without the artifact's
    `_agent_eval/` folders, in the same Job as the evaluator that scores its work afterwards.
    """

    command: list[str] = Field(
        min_length=1,
        description="argv; {readme}, {task}, {root}, {agentDir} and {artifactId} are substituted",
    )
    image: str | None = Field(
        default=None, description="image of the Job for artifacts whose env is local (others use their own)"
    )
    timeout_seconds: float = Field(
        default=3600, gt=0, le=345600, description="cap on the agent phase; a shorter task timeout wins"
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment of the agent")
    pass_env: list[str] = Field(
        default_factory=list, description="worker environment variables passed on (e.g. an API key)"
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="the agent's program files, written to {agentDir} (read-only)"
    )
    network: bool = Field(default=False, description="let the agent reach the network (its model API)")
    memory_mb: int | None = Field(
        default=None, ge=64, alias="memoryMB", description="address-space cap (default: the pod's limit)"
    )


class CandidateOptions(Model):
    """Generate the answers with a model before evaluating them."""

    url: str | None = Field(default=None, description="OpenAI-compatible base URL")
    server_ref: LocalObjectReference | None = None
    model: str = Field(min_length=1)
    api_key_secret_ref: SecretKeyReference | None = None
    samples: int = Field(default=1, ge=1, le=100, description="answers per task")
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="default: 0 for one sample, 0.8 (top_p 0.95) for several"
    )
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(
        default=None, ge=1, le=131072, description="default: HumanEval-V 2048, Vision2Code 8192, else none"
    )
    max_attempts: int = Field(default=3, ge=1, le=10, description="calls per item, retries included")
    timeout_seconds: float = Field(default=600.0, gt=0, le=7200, description="per call")
    concurrency: int = Field(default=16, ge=1, le=4096, description="requests in flight per worker process")
    system_prompt: str | None = Field(default=None, description="replaces the benchmark's system prompt")
    prompt_template: str | None = Field(
        default=None,
        description="replaces the user text; placeholders {question} {function_signature} {width} {height}",
    )


class ScoringOptions(Model):
    pass_k: list[int] = Field(default_factory=list, alias="passK", description="HumanEval-V k values")
    judge_field_prefix: str = Field(
        default="qvl",
        pattern=r"^[A-Za-z0-9_]+$",
        description="ArtifactsBench export fields <prefix>_reason / <prefix>_ans (the original: qvl, gemini)",
    )
