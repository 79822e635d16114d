"""Operator metrics, scraped by a real Prometheus while a run progresses."""

from __future__ import annotations

import pytest

from tests.e2e.test_operator_humanevalv import EXAMPLE

pytestmark = pytest.mark.e2e


def test_prometheus_sees_progress_scores_and_judge_readiness(
    kube, operator, prometheus, judge_double_process
):
    prometheus.add_target(
        f"proctor-{kube.namespace}", f"127.0.0.1:{operator.metrics_port}", scrape_interval="1s"
    )
    judge = judge_double_process()
    kube.apply(
        {
            "apiVersion": "proctor.dev/v1alpha1",
            "kind": "JudgeServer",
            "metadata": {"name": "metrics-judge"},
            "spec": {"external": {"baseUrl": judge.url, "model": "judge-double"}},
        }
    )
    kube("apply", "-f", str(EXAMPLE))
    kube.wait_phase("evalrun", "humanevalv-example", ("Succeeded",), timeout=240)
    ns = kube.namespace
    selector = f'namespace="{ns}",run="humanevalv-example"'

    def value(expr: str) -> float | None:
        result = prometheus.query(expr)
        return float(result[0]["value"][1]) if result else None

    prometheus.wait_for(f'proctor_run_score{{{selector},metric="pass@1"}} == 50', timeout=60)
    assert value(f'proctor_run_items{{{selector},stage="oracle",state="succeeded"}}') == 72
    assert value(f'proctor_run_items{{{selector},stage="oracle",state="pending"}}') == 0
    assert value(f'proctor_run_phase{{{selector},phase="Succeeded"}}') == 1
    assert value(f"sum(proctor_items_processed_total{{{selector}}})") == 72
    assert value(f'proctor_item_duration_seconds_count{{{selector},stage="oracle"}}') == 72
    assert value(f'proctor_run_shards{{{selector},stage="oracle",state="done"}}') == 3
    # what the oracle stage cost, as its workers measured it (summed over the three shards)
    assert value(f'proctor_worker_wall_seconds_total{{{selector},stage="oracle"}}') > 0
    assert value(f'proctor_store_bytes_written_total{{{selector},stage="oracle"}}') > 0
    prometheus.wait_for(
        f'proctor_judgeserver_ready{{namespace="{ns}",judgeserver="metrics-judge"}} == 1', timeout=60
    )
    assert value("proctor_build_info") == 1
    assert value('sum(proctor_api_requests_total{verb="create",resource="Job"})') >= 1
    text = operator.metrics()
    assert "proctor_reconcile_errors_total" in text or "proctor_reconcile_errors" in text
