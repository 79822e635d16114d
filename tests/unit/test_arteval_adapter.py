"""The ArtEvalBench adapter: per-artifact Jobs in the plan, Job requirements in each item, the scores."""

from __future__ import annotations

import json

import pytest

from proctor.plan import plan_run
from proctor_jobs.arteval.pipeline import SETUP_MARGIN_S
from proctor_jobs.benchmarks import FormatError, get_benchmark
from proctor_jobs.records import failed, ok

BENCH = get_benchmark("artevalbench")


def tasks(*rows: dict) -> list[dict]:
    base = {
        "artifact_dir": "x",
        "artifact_readme": "x/README.md",
        "evaluator": "x/_agent_eval/main.py",
        "expected_score": 4,
        "artifact_archive": {"uri": "store:a/x.tar.gz", "sha256": "0" * 64},
    }
    return BENCH.parse_tasks([{**base, **row} for row in rows])


SPEC = {
    "agent": {"command": ["agent", "{readme}"], "timeoutSeconds": 1800, "image": "agents/claude:1"},
    "oracle": {"evaluatorTimeoutSeconds": 900, "privileged": True, "workspaceClaim": "arteval-ws"},
}


def test_each_item_carries_the_job_the_operator_builds_for_it():
    parsed = tasks(
        {"artifact_id": "gpu-art", "env": "img/cuda:12", "gpu": True, "timeout_sec": 600},
        {"artifact_id": "local-art", "env": "local"},
    )
    items, warnings = BENCH.work_items(parsed, None, SPEC)
    jobs = {item["id"]: item["job"] for item in items}
    # The agent gets the shorter of the task's budget and the spec's cap; the evaluator its own deadline.
    assert jobs["gpu-art"] == {
        "image": "img/cuda:12",
        "gpu": True,
        "timeout_seconds": 600 + 900 + SETUP_MARGIN_S,
        "privileged": True,
        "workspace": "arteval-ws",
    }
    assert jobs["local-art"]["image"] == "agents/claude:1"  # env: local runs in the agent's image
    assert jobs["local-art"]["timeout_seconds"] == 1800 + 900 + SETUP_MARGIN_S
    assert jobs["local-art"]["gpu"] is False
    assert any("gpu-art" in w and "spec.agent.image applies to env: local" in w for w in warnings)


def test_defaults_are_an_empty_dir_and_no_privileges():
    items, warnings = BENCH.work_items(tasks({"artifact_id": "a", "env": "img/a:1"}), None, {})
    assert items[0]["job"]["workspace"] == "emptyDir"
    assert items[0]["job"]["privileged"] is False
    assert items[0]["job"]["timeout_seconds"] == 3600 + SETUP_MARGIN_S  # no agent phase
    assert any("no spec.agent" in w for w in warnings)


def test_the_plan_has_one_shard_per_artifact_whatever_the_shard_size():
    items, _ = BENCH.work_items(
        tasks(*({"artifact_id": f"a{i}", "env": "local"} for i in range(3))), None, SPEC
    )
    plan, manifests = plan_run(BENCH, {**SPEC, "sharding": {"shardSize": 50}}, items, "runs/ns/r/u")
    (stage,) = plan.stages
    assert stage.per_item_jobs and stage.shards == 3
    assert [m.item_ids for m in manifests] == [["a0"], ["a1"], ["a2"]]
    assert manifests[0].config["agent"]["command"] == ["agent", "{readme}"]


def test_answers_and_candidate_models_are_refused_with_a_reason():
    with pytest.raises(FormatError, match="no answer sets"):
        BENCH.parse_answers([{"x": 1}], "answers.jsonl")
    with pytest.raises(ValueError, match="not candidate models"):
        BENCH.work_items(tasks({"artifact_id": "a"}), None, {"candidate": {"model": "m"}})


def scored(item_id: str, score: int, expected: int, stages: dict[str, bool]) -> object:
    data = {
        "score": score,
        "max_score": 4,
        "reached_expected": score >= expected,
        "outcome": "scored",
        "stages": [{"name": k, "label": k, "passed": v, "excerpt": ""} for k, v in stages.items()],
    }
    return ok(item_id, "oracle", score=float(score), data=data)


def test_scores_are_the_share_at_expected_and_the_mean_with_failures_counted_as_zero():
    parsed = tasks(
        {"artifact_id": "full", "env": "local"},
        {"artifact_id": "partial", "env": "local"},
        {"artifact_id": "smoke", "env": "local", "expected_score": 1},
        {"artifact_id": "broken", "env": "local"},
    )
    items, _ = BENCH.work_items(parsed, None, {})
    all_pass = dict.fromkeys(("env_setup", "build", "benchmark_prep", "experiment_runs"), True)
    records = {
        "oracle": {
            "full": scored("full", 4, 4, all_pass),
            "partial": scored("partial", 3, 4, {**all_pass, "experiment_runs": False}),
            "smoke": scored("smoke", 1, 1, {}),
            "broken": failed("broken", "oracle", "the evaluator timed out after 60 s", data={"outcome": "x"}),
        }
    }
    result = BENCH.aggregate(items, records, {})
    scores = result["scores"]
    assert result["headline"] == "share_at_expected"
    assert scores["share_at_expected"] == 0.5  # full and smoke
    assert scores["mean_score"] == 2.0  # (4 + 3 + 1 + 0) / 4: the partial credit the share hides
    assert scores["mean_score_scored"] == pytest.approx(8 / 3, abs=1e-3)
    assert scores["stage_pass_rate/experiment_runs"] == 0.5  # of the artifacts that report stages
    assert scores["artifact/partial"] == 3.0 and scores["artifact/broken"] == 0.0
    assert result["counts"] == {"artifacts": 4, "scored": 3, "not_scored": 1, "reached_expected": 2}
    assert result["breakdowns"]["artifacts"]["broken"]["reason"] == "the evaluator timed out after 60 s"

    exports = BENCH.exports(items, records, {})
    rows = [json.loads(line) for line in exports["result.jsonl"].decode().splitlines()]
    assert [r["status"] for r in rows] == ["success"] * 3 + ["error: the evaluator timed out after 60 s"]
    assert rows[1]["stages"]["experiment_runs"] is False
    assert json.loads(exports["avg_score.json"]) == {"final_score": 0.5, "total_tasks": 4, "mean_score": 2.0}


def test_categories_are_the_environments_a_cluster_must_provide():
    parsed = tasks({"artifact_id": "a", "env": "img/a:1"}, {"artifact_id": "b", "env": "local"})
    assert BENCH.categories(parsed) == {"img/a:1": 1, "local": 1}
