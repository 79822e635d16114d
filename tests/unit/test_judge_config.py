"""The judge stage's configuration: the benchmarks' original defaults, profiles, and no secrets."""

from __future__ import annotations

import pytest

from proctor_jobs.judge import JudgeConfig, judge_skip_reason, judge_stage_config
from proctor_jobs.judge.client import normalise_base_url


def test_artifactsbench_defaults_are_the_originals():
    config = judge_stage_config("artifactsbench", {"judge": {"url": "http://127.0.0.1:9/v1", "model": "m"}})
    assert config["temperature"] == 0.7
    assert config["max_tokens"] is None
    assert config["max_prompt_tokens"] == 27000
    assert config["max_attempts"] == 3
    assert config["configured"] is True


def test_vision2code_defaults_are_the_originals():
    config = judge_stage_config("vision2code", {"judge": {"url": "http://127.0.0.1:9/v1"}})
    assert config["temperature"] == 0.0
    assert config["max_tokens"] == 2200
    assert config["max_prompt_tokens"] is None


def test_spec_overrides_defaults():
    spec = {
        "judge": {
            "url": "http://x/v1",
            "temperature": 0.2,
            "maxTokens": 512,
            "maxAttempts": 5,
            "screenshots": 1,
        }
    }
    config = judge_stage_config("artifactsbench", spec)
    assert (config["temperature"], config["max_tokens"], config["max_attempts"], config["screenshots"]) == (
        0.2,
        512,
        5,
        1,
    )


def test_strict_profile_is_reproducible_and_may_shrink_images():
    spec = {"judge": {"url": "http://x/v1", "profile": "strict", "imageMaxSide": 800, "imageFormat": "jpeg"}}
    config = JudgeConfig.from_dict(judge_stage_config("artifactsbench", spec))
    assert config.temperature == 0.0 and config.seed == 0
    assert config.images_transformed


def test_faithful_profile_never_shrinks_images():
    spec = {"judge": {"url": "http://x/v1", "imageMaxSide": 800, "imageFormat": "jpeg"}}
    config = JudgeConfig.from_dict(judge_stage_config("artifactsbench", spec))
    assert not config.images_transformed
    assert config.image.max_side is None and config.image.format == "png"


def test_api_key_never_enters_the_config(monkeypatch):
    spec = {
        "judge": {"url": "http://x/v1", "apiKeySecretRef": {"name": "judge-secret", "key": "apikey-field"}}
    }
    config = judge_stage_config("vision2code", spec)
    assert "judge-secret" not in repr(config) and "apikey-field" not in repr(config)
    monkeypatch.setenv("PROCTOR_JUDGE_API_KEY", "sk-from-env")
    assert JudgeConfig.from_dict(config).api_key() == "sk-from-env"
    monkeypatch.delenv("PROCTOR_JUDGE_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert JudgeConfig.from_dict(config).api_key() == "sk-openai"


def test_server_ref_url_comes_from_the_environment(monkeypatch):
    config = JudgeConfig.from_dict(
        judge_stage_config("artifactsbench", {"judge": {"serverRef": {"name": "qwen"}}})
    )
    assert config.configured and config.url is None
    monkeypatch.delenv("PROCTOR_JUDGE_URL", raising=False)
    with pytest.raises(RuntimeError, match="qwen"):
        config.resolved_url()
    monkeypatch.setenv("PROCTOR_JUDGE_URL", "http://judge.ns.svc:8000/v1")
    assert config.resolved_url() == "http://judge.ns.svc:8000/v1"


def test_skip_reason_only_without_a_judge():
    assert judge_skip_reason({}) is not None
    assert "judge" in judge_skip_reason({"judge": {"model": "m"}})
    assert judge_skip_reason({"judge": {"url": "http://x/v1"}}) is None
    assert not judge_stage_config("artifactsbench", {})["configured"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("http://gw/openai/v1", "http://gw/openai/v1"),
    ],
)
def test_base_url_normalisation(given, expected):
    assert normalise_base_url(given) == expected


def test_base_url_must_be_http():
    with pytest.raises(ValueError, match="http"):
        normalise_base_url("judge:8000")
