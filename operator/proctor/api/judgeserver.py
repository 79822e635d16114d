"""JudgeServer: a multimodal judge shared by runs, served by vLLM in the cluster or hosted elsewhere."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from proctor.api.common import (
    Condition,
    LocalObjectReference,
    Model,
    ObjectMeta,
    Quantity,
    SecretKeyReference,
    Toleration,
)

# The newest vLLM release when it was set; tests/integration/test_vllm_contract.py checks the commands and
# requests Proctor sends against this version's vLLM package (and the older ones docs/operations.md lists).
DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.34.0"

JudgePhase = Literal["Pending", "Loading", "Ready", "Degraded", "Failed"]


class VllmJudge(Model):
    """A vLLM OpenAI-compatible server the operator deploys on GPU nodes."""

    model: str = Field(min_length=1, description="model name on the hub, a URI, or a path in modelCachePVC")
    served_model_name: str | None = Field(default=None, description="the name clients send (default: model)")
    image: str = Field(
        default=DEFAULT_VLLM_IMAGE,
        description="the vLLM server image (vllm/vllm-openai or a mirror); commands and requests are "
        "checked against vLLM 0.11.0 and 0.34.0",
    )
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    gpus: int = Field(default=1, ge=0, le=64, description="GPUs per replica")
    gpu_resource: str = "nvidia.com/gpu"
    max_model_len: int | None = Field(default=None, ge=256)
    images_per_prompt: int = Field(default=8, ge=0, le=64, description="vLLM --limit-mm-per-prompt image=N")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    extra_args: list[str] = Field(default_factory=list)
    replicas: int | None = Field(default=1, ge=0, le=64, description="unset: leave replicas to an autoscaler")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    runtime_class_name: str | None = None
    model_cache_pvc: str | None = Field(default=None, description="a PVC mounted at /models (model cache)")
    shm_size: Quantity = "16Gi"
    resources: dict[str, Quantity] = Field(default_factory=dict, description="extra requests (cpu, memory)")
    port: int = Field(default=8000, ge=1, le=65535)
    hf_token_secret_ref: SecretKeyReference | None = None


class ExternalJudge(Model):
    """A hosted OpenAI-compatible endpoint."""

    base_url: str = Field(pattern=r"^https?://", description="e.g. https://api.openai.com/v1")
    model: str = Field(min_length=1)
    api_key_secret_ref: SecretKeyReference | None = None


class JudgeCalibration(Model):
    """The calibration a judge must pass before it is Ready: scores inside known bands for a few shipped
    items (known screenshots and renders) asked with each benchmark's real judge prompt."""

    enabled: bool | None = Field(
        default=None,
        description="unset: on for a vllm judge (unless healthCheck is false), off for an external one",
    )
    benchmark: Literal["all", "artifactsbench", "vision2code"] = Field(
        default="all", description="which calibration set the judge must pass"
    )


class JudgeCalibrationStatus(Model):
    benchmark: str | None = None
    state: Literal["Waiting", "Running", "Passed", "Failed"] | None = None
    items: int | None = None
    failed_items: list[str] = Field(default_factory=list)
    message: str | None = None
    time: str | None = None
    fingerprint: str | None = Field(
        default=None, description="the endpoint, model and set this calibration vouches for (a hash)"
    )
    attempt: int | None = Field(default=None, description="which try at this fingerprint (1, 2, ...)")
    job: str | None = Field(default=None, description="the calibration Job that asked (or asks) the judge")


class JudgeServerSpec(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.vllm) != has(self.external)",
                    "message": "exactly one of vllm, external must be set",
                }
            ]
        }
    )

    vllm: VllmJudge | None = None
    external: ExternalJudge | None = None
    max_concurrency: int = Field(
        default=32, ge=1, le=4096, description="requests in flight per replica, all runs"
    )
    health_check: bool = Field(default=True, description="Ready only after a one-image chat completion works")
    calibration: JudgeCalibration | None = Field(
        default=None,
        description="Ready only after the judge scores the calibration items inside their bands "
        "(reason CalibrationFailed when not)",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> JudgeServerSpec:
        if (self.vllm is None) == (self.external is None):
            raise ValueError("exactly one of vllm, external must be set")
        return self


class JudgeServerStatus(Model):
    phase: JudgePhase = "Pending"
    endpoint: str | None = None
    model: str | None = None
    ready_replicas: int = 0
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    last_check_time: str | None = None
    calibration: JudgeCalibrationStatus | None = None


class JudgeServer(Model):
    """A multimodal judge model served by vLLM in the cluster, or an external OpenAI-compatible endpoint."""

    api_version: Literal["proctor.dev/v1alpha1"] = "proctor.dev/v1alpha1"
    kind: Literal["JudgeServer"] = "JudgeServer"
    metadata: ObjectMeta
    spec: JudgeServerSpec
    status: JudgeServerStatus | None = None


__all__ = [
    "ExternalJudge",
    "JudgeCalibration",
    "JudgeCalibrationStatus",
    "JudgeServer",
    "JudgeServerSpec",
    "JudgeServerStatus",
    "LocalObjectReference",
    "VllmJudge",
]
