"""The judge stage's configuration: what the worker receives, built from `spec.judge`.

The control plane calls `judge_stage_config(benchmark, spec)` when it plans a run; the result is
the stage's JSON config (part of the config hash, so changing the judge, its sampling or its
prompt profile re-judges, and nothing else does). The API key is never part of it: the worker
reads it from the environment (`PROCTOR_JUDGE_API_KEY`, else `OPENAI_API_KEY`).

This module imports nothing heavy: the control plane imports it while planning.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

API_KEY_ENV = "PROCTOR_JUDGE_API_KEY"
URL_ENV = "PROCTOR_JUDGE_URL"  # set by the operator when spec.judge names a JudgeServer
FALLBACK_KEY_ENV = "OPENAI_API_KEY"

# Each benchmark's original request: ArtifactsBench samples at 0.7 with no max_tokens and cuts the
# prompt to 27,000 tokens (src/infer_qvl.py, src/utils.py::truncate_content); Vision2Code rates at
# temperature 0 with 2,200 max tokens (configs/evaluation/rubric.json).
BENCHMARK_DEFAULTS: dict[str, dict[str, Any]] = {
    "artifactsbench": {"temperature": 0.7, "max_tokens": None, "max_prompt_tokens": 27000},
    "vision2code": {"temperature": 0.0, "max_tokens": 2200, "max_prompt_tokens": None},
}
DEFAULT_CONCURRENCY = 32


@dataclass
class ImageOptions:
    """Optional shrinking of images before they are sent; never applied in the faithful profile."""

    max_side: int | None = None
    format: str = "png"  # png | jpeg
    jpeg_quality: int = 85

    @property
    def active(self) -> bool:
        return self.max_side is not None or self.format != "png"


@dataclass
class JudgeConfig:
    benchmark: str
    configured: bool = False
    url: str | None = None
    server_ref: str | None = None
    model: str | None = None
    api_key_env: str = API_KEY_ENV
    profile: str = "faithful"
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    max_attempts: int = 3
    timeout_s: float = 300.0
    concurrency: int = DEFAULT_CONCURRENCY
    screenshots: int | None = None
    tokenizer: str | None = None
    max_prompt_tokens: int | None = None
    system_message: bool = False
    rubric: str = "dataset"
    outage_s: float = 600.0
    backoff_s: float = 1.0
    image: ImageOptions = field(default_factory=ImageOptions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        image = known.pop("image", None) or {}
        return cls(**known, image=ImageOptions(**image))

    def resolved_url(self) -> str:
        """The base URL to call: the config's, else the one the operator put in the environment."""
        url = self.url or os.environ.get(URL_ENV)
        if not url:
            target = f"JudgeServer {self.server_ref!r}" if self.server_ref else "the judge"
            raise RuntimeError(
                f"no URL for {target}: set spec.judge.url or the {URL_ENV} environment variable"
            )
        return url

    def api_key(self) -> str:
        # vLLM needs no key, but the client library insists on one.
        return os.environ.get(self.api_key_env) or os.environ.get(FALLBACK_KEY_ENV) or "EMPTY"

    @property
    def images_transformed(self) -> bool:
        return self.profile != "faithful" and self.image.active


def judge_stage_config(benchmark: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The judge stage's JSON config from the camelCase `spec["judge"]` (absent: not configured)."""
    judge = spec.get("judge") or {}
    defaults = BENCHMARK_DEFAULTS.get(benchmark, {})
    profile = judge.get("profile", "faithful")
    server_ref = (judge.get("serverRef") or {}).get("name")
    configured = bool(judge.get("url") or server_ref)
    temperature = judge.get("temperature")
    if temperature is None:
        # `strict` asks for a reproducible judge; `faithful` samples as the original does.
        temperature = 0.0 if profile == "strict" else defaults.get("temperature", 0.0)
    seed = judge.get("seed")
    if seed is None and profile == "strict":
        seed = 0
    config = JudgeConfig(
        benchmark=benchmark,
        configured=configured,
        url=judge.get("url"),
        server_ref=server_ref,
        model=judge.get("model"),
        profile=profile,
        temperature=float(temperature),
        max_tokens=judge.get("maxTokens", defaults.get("max_tokens")),
        seed=seed,
        max_attempts=int(judge.get("maxAttempts", 3)),
        timeout_s=float(judge.get("timeoutSeconds", 300.0)),
        concurrency=int(judge.get("concurrency") or DEFAULT_CONCURRENCY),
        screenshots=judge.get("screenshots"),
        tokenizer=judge.get("tokenizer"),
        max_prompt_tokens=judge.get("maxPromptTokens", defaults.get("max_prompt_tokens")),
        system_message=bool(judge.get("systemMessage", False)),
        rubric=judge.get("rubric", "dataset"),
        outage_s=float(judge.get("outageSeconds", 600.0)),
        backoff_s=float(judge.get("backoffSeconds", 1.0)),
        image=ImageOptions(
            max_side=judge.get("imageMaxSide"),
            format=judge.get("imageFormat", "png"),
            jpeg_quality=int(judge.get("jpegQuality", 85)),
        ),
    )
    if profile == "faithful":
        # The faithful profile sends the images exactly as rendered; shrinking would change scores.
        config.image = ImageOptions()
    return config.to_dict()


def judge_skip_reason(spec: dict[str, Any]) -> str | None:
    """Why a judge stage cannot run under this spec (None when it can)."""
    judge = spec.get("judge") or {}
    if judge.get("url") or (judge.get("serverRef") or {}).get("name"):
        return None
    return "no judge configured (set spec.judge.serverRef or spec.judge.url, or pass --judge-url)"
