"""Metrics are computed at scrape time from cached state, and finished runs' series expire."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest

from proctor.metrics import OperatorState, ProctorCollector, RunMetrics, sum_shard_metrics
from proctor.reconcile.evalrun import StageProgress


def scrape(state: OperatorState) -> str:
    registry = CollectorRegistry()
    registry.register(ProctorCollector(state))
    return generate_latest(registry).decode()


def shard(durations: dict, judge: dict) -> dict:
    return {
        "counters": {
            "judge_requests": judge,
            "judge_tokens": {"prompt": 1000, "completion": 40},
            "judge_retried_calls": {"": 1},
            "judge_images": {"sent": 6},
        },
        "histograms": {"item_duration_seconds": durations, "judge_request_seconds": {"0.5": 2}},
        "sums": {"item_duration_seconds": 3.0, "judge_request_seconds": 0.6},
    }


def test_run_series_items_histograms_and_scores():
    state = OperatorState()
    measured = sum_shard_metrics([shard({"0.1": 2, "1": 1}, {"ok": 3}), shard({"1": 1}, {"ok": 1, "429": 2})])
    state.update_run(
        "u1",
        RunMetrics(
            "ns",
            "run",
            "humanevalv",
            "Running",
            [StageProgress("oracle", 10, succeeded=6, failed=1, shards=2, shards_done=1)],
            {"oracle": measured},
            {"pass@1": 50.0},
        ),
    )
    text = scrape(state)
    assert (
        'proctor_run_items{benchmark="humanevalv",namespace="ns",run="run",stage="oracle",'
        'state="pending"} 3.0' in text
    )
    assert (
        'proctor_items_processed_total{namespace="ns",run="run",stage="oracle",state="succeeded"} 6.0' in text
    )
    assert (
        'proctor_item_duration_seconds_bucket{le="0.1",namespace="ns",run="run",stage="oracle"} 2.0' in text
    )
    assert 'proctor_item_duration_seconds_bucket{le="1",namespace="ns",run="run",stage="oracle"} 4.0' in text
    assert 'proctor_item_duration_seconds_count{namespace="ns",run="run",stage="oracle"} 4.0' in text
    assert (
        'proctor_judge_requests_total{judge="",namespace="ns",outcome="429",run="run",stage="oracle"} 2.0'
        in text
    )
    assert (
        'proctor_judge_requests_total{judge="",namespace="ns",outcome="ok",run="run",stage="oracle"} 4.0'
        in text
    )
    # what the judging cost in tokens, retries and images, summed over the shards, by stage
    assert (
        'proctor_judge_tokens_total{judge="",kind="prompt",namespace="ns",run="run",stage="oracle"} 2000.0'
        in text
    )
    completion = (
        'proctor_judge_tokens_total{judge="",kind="completion",namespace="ns",run="run",stage="oracle"}'
    )
    assert f"{completion} 80.0" in text
    assert 'proctor_judge_retried_calls_total{judge="",namespace="ns",run="run",stage="oracle"} 2.0' in text
    assert 'proctor_judge_images_total{namespace="ns",run="run",stage="oracle"} 12.0' in text
    assert (
        'proctor_judge_request_duration_seconds_sum{judge="",namespace="ns",run="run",stage="oracle"} 1.2'
        in text
    )
    assert (
        'proctor_run_score{benchmark="humanevalv",judge="",metric="pass@1",namespace="ns",run="run"} 50.0'
        in text
    )
    assert 'proctor_run_phase{namespace="ns",phase="Running",run="run"} 1.0' in text
    assert "proctor_build_info{" in text


def test_several_judges_are_told_apart_by_a_judge_label():
    state = OperatorState()
    first = sum_shard_metrics([shard({}, {"ok": 3})])
    second = sum_shard_metrics([shard({}, {"ok": 5, "500": 1}), shard({}, {"ok": 1})])
    stages = [StageProgress(n, 4, succeeded=4, shards=1, shards_done=1) for n in ("judge", "judge-noise")]
    scores = {"AVG": 61.0, "judge/AVG": 70.0, "noise/AVG": 52.0, "aggregate/AVG": 61.0, "artifact/x": 4.0}
    judges = {"judge": "judge", "judge-noise": "noise"}
    run = RunMetrics(
        "ns", "run", "artifactsbench", "Succeeded", stages, {"judge": first, "judge-noise": second}
    )
    run.scores, run.judges = scores, judges
    state.update_run("u1", run)
    text = scrape(state)
    assert (
        'proctor_judge_requests_total{judge="judge",namespace="ns",outcome="ok",run="run",stage="judge"} 3.0'
        in text
    )
    assert (
        'proctor_judge_requests_total{judge="noise",namespace="ns",outcome="ok",run="run",stage="judge-noise"} 6.0'  # noqa: E501
        in text
    )
    assert (
        'proctor_judge_requests_total{judge="noise",namespace="ns",outcome="500",run="run",stage="judge-noise"} 1.0'  # noqa: E501
        in text
    )
    assert (
        'proctor_judge_tokens_total{judge="noise",kind="prompt",namespace="ns",run="run",stage="judge-noise"} 2000.0'  # noqa: E501
        in text
    )
    assert (
        'proctor_judge_request_duration_seconds_count{judge="judge",namespace="ns",run="run",stage="judge"} 2.0'  # noqa: E501
        in text
    )
    labels = 'benchmark="artifactsbench",judge="{}",metric="AVG",namespace="ns",run="run"'
    for judge, value in (("", 61.0), ("judge", 70.0), ("noise", 52.0), ("aggregate", 61.0)):
        assert f"proctor_run_score{{{labels.format(judge)}}} {value}" in text
    # a score with a slash of its own (ArtEvalBench's per-artifact scores) names no judge
    assert 'judge="",metric="artifact/x",namespace="ns",run="run"} 4.0' in text


def test_finished_runs_expire_after_retention():
    state = OperatorState(retention_s=0.05)
    state.update_run("u1", RunMetrics("ns", "done", phase="Succeeded"))
    state.update_run("u2", RunMetrics("ns", "active", phase="Running"))
    assert 'run="done"' in scrape(state)
    time.sleep(0.1)
    text = scrape(state)
    assert 'run="done"' not in text and 'run="active"' in text


def test_judges_and_errors():
    state = OperatorState()
    state.judges[("ns", "qwen")] = "Degraded"
    state.error("EvalRun", "StoreError")
    text = scrape(state)
    assert 'proctor_judgeserver_ready{judgeserver="qwen",namespace="ns"} 0.0' in text
    assert 'proctor_judgeserver_phase{judgeserver="qwen",namespace="ns",phase="Degraded"} 1.0' in text
    assert 'proctor_reconcile_errors_total{kind="EvalRun",reason="StoreError"} 1.0' in text


def test_cost_series_per_stage_from_the_workers_progress():
    state = OperatorState()
    judge = {
        "counters": {
            "judge_images": {"sent": 6},
            "judge_image_pixels": {"sent": 600},
            "judge_tokens_estimated": {"prompt": 70},
        },
        "sums": {"worker_cpu_seconds": 1.5, "store_bytes_written": 2048},
    }
    render = {"sums": {"worker_cpu_seconds": 4.0, "worker_wall_seconds": 9.0}}
    measured = {"render": sum_shard_metrics([render, render]), "judge": sum_shard_metrics([judge])}
    stages = [StageProgress("render", 4, shards=2), StageProgress("judge", 4, shards=1)]
    state.update_run("u1", RunMetrics("ns", "run", "artifactsbench", "Running", stages, measured, {}))
    text = scrape(state)
    assert 'proctor_worker_cpu_seconds_total{namespace="ns",run="run",stage="render"} 8.0' in text
    assert 'proctor_worker_wall_seconds_total{namespace="ns",run="run",stage="render"} 18.0' in text
    assert 'proctor_worker_cpu_seconds_total{namespace="ns",run="run",stage="judge"} 1.5' in text
    assert 'proctor_store_bytes_written_total{namespace="ns",run="run",stage="judge"} 2048.0' in text
    assert 'proctor_judge_images_total{namespace="ns",run="run",stage="judge"} 6.0' in text
    assert 'proctor_judge_image_pixels_total{namespace="ns",run="run",stage="judge"} 600.0' in text
    assert (
        'proctor_judge_tokens_estimated_total{kind="prompt",namespace="ns",run="run",stage="judge"} 70.0'
        in text
    )
