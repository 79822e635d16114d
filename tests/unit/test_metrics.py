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
        "counters": {"judge_requests": judge, "judge_tokens": {"prompt": 1000, "completion": 40}},
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
    # a stage that is no judge's (here: no judge stage at all) reports under the empty judge name
    assert 'proctor_judge_requests_total{judge="",namespace="ns",outcome="429",run="run"} 2.0' in text
    assert 'proctor_judge_requests_total{judge="",namespace="ns",outcome="ok",run="run"} 4.0' in text
    # what the judging cost in tokens, summed over the shards
    assert 'proctor_judge_tokens_total{judge="",kind="prompt",namespace="ns",run="run"} 2000.0' in text
    assert 'proctor_judge_tokens_total{judge="",kind="completion",namespace="ns",run="run"} 80.0' in text
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
    assert 'proctor_judge_requests_total{judge="judge",namespace="ns",outcome="ok",run="run"} 3.0' in text
    assert 'proctor_judge_requests_total{judge="noise",namespace="ns",outcome="ok",run="run"} 6.0' in text
    assert 'proctor_judge_requests_total{judge="noise",namespace="ns",outcome="500",run="run"} 1.0' in text
    assert 'proctor_judge_tokens_total{judge="noise",kind="prompt",namespace="ns",run="run"} 2000.0' in text
    assert 'proctor_judge_request_duration_seconds_count{judge="judge",namespace="ns",run="run"} 2.0' in text
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
