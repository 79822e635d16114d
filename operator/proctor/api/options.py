"""Per-stage options of an EvalRun: rendering, judging, oracle execution, candidate generation.

Each benchmark reads only the options that concern its stages; defaults reproduce the original
harnesses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from proctor.api.common import LocalObjectReference, Model, SecretKeyReference


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
    screenshots: int = Field(default=3, ge=1, le=20)
    interval_seconds: float = Field(default=1.0, ge=0, le=60)
    viewport: Viewport = Field(default_factory=Viewport)
    full_page: bool = True
    max_page_height: int = Field(default=8000, ge=64, le=100000, description="cap on full-page height (px)")
    deadline_seconds: float = Field(default=30.0, gt=0, le=600, description="per-item render deadline")
    concurrency: int = Field(default=4, ge=1, le=64, description="pages rendered at once per worker")
    interaction: list[InteractionStep] = Field(default_factory=list)
    cache: bool = Field(default=True, description="reuse evidence for an identical answer and config")


class JudgeOptions(Model):
    """Which judge scores the evidence and how it is asked."""

    server_ref: LocalObjectReference | None = Field(
        default=None, description="a JudgeServer in this namespace"
    )
    url: str | None = Field(default=None, description="an OpenAI-compatible base URL (local mode)")
    model: str | None = None
    api_key_secret_ref: SecretKeyReference | None = None
    profile: Literal["faithful", "strict"] = "faithful"
    screenshots: int | None = Field(default=None, ge=0, le=20, description="screenshots sent (default: all)")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=65536)
    max_attempts: int = Field(default=3, ge=1, le=10, description="judge calls per item, retries included")
    timeout_seconds: float = Field(default=300.0, gt=0, le=3600)
    concurrency: int | None = Field(default=None, ge=1, le=4096, description="cap below the server's own")
    tokenizer: str | None = Field(default=None, description="path or URL of a tokenizer.json for truncation")


class OracleOptions(Model):
    """Sandboxed execution of answers and evaluators."""

    timeout_seconds: float = Field(default=2.0, gt=0, le=345600, description="per program (HumanEval-V: 2 s)")
    memory_mb: int = Field(default=2048, ge=64, le=1048576, alias="memoryMB")
    max_processes: int = Field(default=64, ge=1, le=65536)
    max_file_mb: int = Field(default=64, ge=1, le=1048576, alias="maxFileMB")
    pylint: bool = Field(default=True, description="HumanEval-V's pylint gate (errors fail the sample)")
    concurrency: int = Field(default=0, ge=0, le=256, description="programs at once per worker (0: CPUs)")
    privileged: bool = Field(default=False, description="privileged oracle pods (some artifacts run Docker)")


class AgentOptions(Model):
    """An agent stage before the oracle (ArtEvalBench): a command given the artifact's README."""

    command: list[str] = Field(min_length=1)
    image: str | None = None
    timeout_seconds: float = Field(default=3600, gt=0, le=345600)
    env: dict[str, str] = Field(default_factory=dict)


class CandidateOptions(Model):
    """Generate the answers with a model before evaluating them."""

    url: str | None = Field(default=None, description="OpenAI-compatible base URL")
    server_ref: LocalObjectReference | None = None
    model: str = Field(min_length=1)
    api_key_secret_ref: SecretKeyReference | None = None
    samples: int = Field(default=1, ge=1, le=100)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=131072)


class ScoringOptions(Model):
    pass_k: list[int] = Field(default_factory=list, alias="passK", description="HumanEval-V k values")
