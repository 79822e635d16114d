"""Prometheus metrics, computed at scrape time from the operator's cached state.

Reconciliation keeps a small in-memory picture of every run and judge (`OperatorState`); the
collector turns it into metric families when Prometheus scrapes, so nothing is double-counted and a
run's series disappear after it has finished and `retention` has passed (no unbounded labels).
Counters that workers measure (item durations, judge requests) travel in per-shard progress records
and are summed over shards here.
"""

from __future__ import annotations

import platform
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from proctor import __version__
from proctor.cluster import API_REQUESTS

PHASES = ("Pending", "Queued", "Running", "Succeeded", "Failed", "Suspended")
JUDGE_PHASES = ("Pending", "Loading", "Ready", "Degraded", "Failed")


@dataclass
class RunMetrics:
    namespace: str
    name: str
    benchmark: str = ""
    phase: str = "Pending"
    stages: list[Any] = field(default_factory=list)  # reconcile.evalrun.StageProgress
    shard_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> summed snapshots
    scores: dict[str, float] = field(default_factory=dict)  # a judge's own: "<judge>/<metric>"
    judges: dict[str, str] = field(default_factory=dict)  # judge stage -> judge name
    finished_at: float | None = None  # monotonic


@dataclass
class OperatorState:
    runs: dict[str, RunMetrics] = field(default_factory=dict)
    judges: dict[tuple[str, str], str] = field(default_factory=dict)  # (namespace, name) -> phase
    reconcile_errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    retention_s: float = 600.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update_run(self, uid: str, metrics: RunMetrics) -> None:
        with self.lock:
            previous = self.runs.get(uid)
            if metrics.phase in ("Succeeded", "Failed"):
                metrics.finished_at = (
                    previous.finished_at if previous and previous.finished_at else time.monotonic()
                )
            self.runs[uid] = metrics

    def forget_run(self, uid: str) -> None:
        with self.lock:
            self.runs.pop(uid, None)

    def error(self, kind: str, reason: str) -> None:
        with self.lock:
            self.reconcile_errors[(kind, reason)] += 1

    def expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            for uid in [
                u for u, r in self.runs.items() if r.finished_at and now - r.finished_at > self.retention_s
            ]:
                del self.runs[uid]


def sum_shard_metrics(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"counters": {}, "histograms": {}, "sums": {}}
    for snap in snapshots:
        for name, series in (snap.get("counters") or {}).items():
            out = total["counters"].setdefault(name, {})
            for label, value in series.items():
                out[label] = out.get(label, 0.0) + value
        for name, buckets in (snap.get("histograms") or {}).items():
            out = total["histograms"].setdefault(name, {})
            for bucket, count in buckets.items():
                out[bucket] = out.get(bucket, 0.0) + count
        for name, value in (snap.get("sums") or {}).items():
            total["sums"][name] = total["sums"].get(name, 0.0) + value
    return total


def _cumulative(buckets: dict[str, float]) -> list[tuple[str, float]]:
    def bound(key: str) -> float:
        return float("inf") if key == "+Inf" else float(key)

    out, running = [], 0.0
    for key in sorted(buckets, key=bound):
        running += buckets[key]
        out.append((key, running))
    if not out or out[-1][0] != "+Inf":
        out.append(("+Inf", running))
    return out


def _judge_of(metric: str, judges: dict[str, str]) -> tuple[str, str]:
    """(judge, metric) of a score: `<judge>/<metric>` names a judge only on a run with several judges
    (other scores have slashes of their own, e.g. ArtEvalBench's `artifact/<id>`)."""
    head, _, rest = metric.partition("/")
    if rest and len(judges) > 1 and (head in judges.values() or head == "aggregate"):
        return head, rest
    return "", metric


class ProctorCollector:
    """A prometheus_client collector over OperatorState."""

    def __init__(self, state: OperatorState) -> None:
        self.state = state

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        self.state.expire()
        with self.state.lock:
            runs = list(self.state.runs.values())
            judges = dict(self.state.judges)
            errors = dict(self.state.reconcile_errors)
        info = GaugeMetricFamily("proctor_build_info", "Proctor operator build", labels=["version", "python"])
        info.add_metric([__version__, platform.python_version()], 1)
        yield info

        run_labels = ["namespace", "run"]
        items = GaugeMetricFamily(
            "proctor_run_items",
            "Items of a run by stage and state",
            labels=[*run_labels, "benchmark", "stage", "state"],
        )
        processed = CounterMetricFamily(
            "proctor_items_processed",
            "Items finished by stage and outcome",
            labels=[*run_labels, "stage", "state"],
        )
        shards = GaugeMetricFamily(
            "proctor_run_shards", "Shards by stage", labels=[*run_labels, "stage", "state"]
        )
        phase = GaugeMetricFamily(
            "proctor_run_phase", "1 for the run's current phase", labels=[*run_labels, "phase"]
        )
        scores = GaugeMetricFamily(
            "proctor_run_score",
            "Scores of finished runs; `judge` names one of several judges (`aggregate`: their mean or "
            "median), empty for the run's own scores",
            labels=[*run_labels, "benchmark", "metric", "judge"],
        )
        runs_by_phase = GaugeMetricFamily(
            "proctor_runs", "Runs known to the operator by phase", labels=["phase"]
        )
        durations = HistogramMetricFamily(
            "proctor_item_duration_seconds",
            "Time to process one item in a stage",
            labels=[*run_labels, "stage"],
        )
        # Judge metrics carry the stage that called the judge: what judging cost, stage by stage.
        judge_requests = CounterMetricFamily(
            "proctor_judge_requests",
            "Judge requests made by workers, by stage (and its judge) and outcome",
            labels=[*run_labels, "stage", "judge", "outcome"],
        )
        judge_tokens = CounterMetricFamily(
            "proctor_judge_tokens",
            "Tokens the judge reported (the API's usage), by kind: prompt or completion",
            labels=[*run_labels, "stage", "judge", "kind"],
        )
        judge_retried = CounterMetricFamily(
            "proctor_judge_retried_calls",
            "Judge calls beyond each judged item's first (retries after errors and unparseable replies)",
            labels=[*run_labels, "stage", "judge"],
        )
        judge_latency = HistogramMetricFamily(
            "proctor_judge_request_duration_seconds",
            "Judge request latency seen by workers",
            labels=[*run_labels, "stage", "judge"],
        )
        # What a run costs, per stage (from the workers' progress records; cost.py keeps the same names).
        stage_labels = [*run_labels, "stage"]
        cost_families = {
            "worker_cpu_seconds": CounterMetricFamily(
                "proctor_worker_cpu_seconds",
                "Worker CPU seconds (with reaped child processes: browsers, sandboxes) by stage",
                labels=stage_labels,
            ),
            "worker_wall_seconds": CounterMetricFamily(
                "proctor_worker_wall_seconds",
                "Worker wall time summed over shards, by stage",
                labels=stage_labels,
            ),
            "store_bytes_written": CounterMetricFamily(
                "proctor_store_bytes_written",
                "Bytes the workers wrote to the store, by stage",
                labels=stage_labels,
            ),
        }
        judge_images = CounterMetricFamily(
            "proctor_judge_images", "Images sent to the judge (once per item), by stage", labels=stage_labels
        )
        judge_pixels = CounterMetricFamily(
            "proctor_judge_image_pixels",
            "Pixels of the images sent to the judge, by stage",
            labels=stage_labels,
        )
        judge_estimated = CounterMetricFamily(
            "proctor_judge_tokens_estimated",
            "Tokens Proctor counted for judge replies without usage (never in proctor_judge_tokens)",
            labels=[*stage_labels, "kind"],
        )
        counts = Counter(r.phase for r in runs)
        for p in PHASES:
            runs_by_phase.add_metric([p], counts.get(p, 0))
        for run in runs:
            key = [run.namespace, run.name]
            for p in PHASES:
                phase.add_metric([*key, p], 1 if run.phase == p else 0)
            for stage in run.stages:
                pending = max(0, stage.total - stage.done)
                for state, value in (
                    ("succeeded", stage.succeeded),
                    ("failed", stage.failed),
                    ("skipped", stage.skipped),
                    ("pending", pending),
                ):
                    items.add_metric([*key, run.benchmark, stage.name, state], value)
                for state, value in (
                    ("succeeded", stage.succeeded),
                    ("failed", stage.failed),
                    ("skipped", stage.skipped),
                ):
                    processed.add_metric([*key, stage.name, state], value)
                shards.add_metric([*key, stage.name, "done"], stage.shards_done)
                shards.add_metric([*key, stage.name, "total"], stage.shards)
                measured = run.shard_metrics.get(stage.name) or {}
                sums = measured.get("sums") or {}
                for name, family in cost_families.items():
                    if name in sums:
                        family.add_metric([*key, stage.name], float(sums[name]))
                counters = measured.get("counters") or {}
                for family, name in ((judge_images, "judge_images"), (judge_pixels, "judge_image_pixels")):
                    if counters.get(name):
                        family.add_metric([*key, stage.name], float(sum(counters[name].values())))
                for kind, value in (counters.get("judge_tokens_estimated") or {}).items():
                    judge_estimated.add_metric([*key, stage.name, kind], value)
                buckets = (measured.get("histograms") or {}).get("item_duration_seconds")
                if buckets:
                    total = (measured.get("sums") or {}).get("item_duration_seconds", 0.0)
                    durations.add_metric([*key, stage.name], _cumulative(buckets), sum_value=total)
            for metric, value in run.scores.items():
                judge, name = _judge_of(metric, run.judges)
                scores.add_metric([*key, run.benchmark, name, judge], float(value))
            for stage_name, measured in sorted(run.shard_metrics.items()):
                # each judge has its own stage: the series carry both (a generate stage's judge is "")
                counters = measured.get("counters") or {}
                staged = [*key, stage_name, run.judges.get(stage_name, "")]
                for outcome, value in (counters.get("judge_requests") or {}).items():
                    judge_requests.add_metric([*staged, outcome], value)
                for kind, value in (counters.get("judge_tokens") or {}).items():
                    judge_tokens.add_metric([*staged, kind], value)
                if "judge_retried_calls" in counters:
                    judge_retried.add_metric(staged, sum(counters["judge_retried_calls"].values()))
                latency = (measured.get("histograms") or {}).get("judge_request_seconds")
                if latency:
                    total = (measured.get("sums") or {}).get("judge_request_seconds", 0.0)
                    judge_latency.add_metric(staged, _cumulative(latency), sum_value=total)
        yield from (
            items,
            processed,
            shards,
            phase,
            scores,
            runs_by_phase,
            durations,
            judge_requests,
            judge_tokens,
            judge_retried,
            judge_latency,
            *cost_families.values(),
            judge_images,
            judge_pixels,
            judge_estimated,
        )

        ready = GaugeMetricFamily(
            "proctor_judgeserver_ready", "1 when the JudgeServer serves", labels=["namespace", "judgeserver"]
        )
        judge_phase = GaugeMetricFamily(
            "proctor_judgeserver_phase",
            "1 for the JudgeServer's phase",
            labels=["namespace", "judgeserver", "phase"],
        )
        for (namespace, name), p in judges.items():
            ready.add_metric([namespace, name], 1 if p == "Ready" else 0)
            for candidate in JUDGE_PHASES:
                judge_phase.add_metric([namespace, name, candidate], 1 if p == candidate else 0)
        yield ready
        yield judge_phase

        reconcile = CounterMetricFamily(
            "proctor_reconcile_errors", "Reconciliation errors by kind and reason", labels=["kind", "reason"]
        )
        for (kind, reason), value in errors.items():
            reconcile.add_metric([kind, reason], value)
        yield reconcile
        api = CounterMetricFamily(
            "proctor_api_requests",
            "Kubernetes API requests made by the operator's client",
            labels=["verb", "resource"],
        )
        for (verb, resource), value in dict(API_REQUESTS).items():
            api.add_metric([verb, resource], value)
        yield api


def serve(state: OperatorState, port: int, host: str = "0.0.0.0") -> None:
    """Expose /metrics on `port` (a daemon thread of prometheus_client)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(ProctorCollector(state))
    start_http_server(port, addr=host, registry=registry)
