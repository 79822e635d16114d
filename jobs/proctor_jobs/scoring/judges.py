"""Scores of a run with several judges: each judge's leaderboard, an aggregate, and their agreement.

Each judge is scored by the benchmark's own aggregation, as if it were the run's only judge (its
stage's records in place of the `judge` stage's), so a judge's numbers are exactly the numbers a
one-judge run with it would report. The aggregate judge is a synthetic record per item whose score
is the mean (or median) of the judges that scored the item, run through the same aggregation.
Agreement between two judges (and between each judge and human ratings, when given) is computed over
the items both scored, with the statistics behind `proctor agreement` (`stats.agreement` and its
seeded bootstrap), pooled and per category (ArtifactsBench domain, Vision2Code source dataset).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from itertools import combinations
from typing import Any

from proctor_jobs.judge.panel import JudgeEntry, judge_entries, judge_spec
from proctor_jobs.records import ItemRecord, failed, ok
from proctor_jobs.scoring.items import item_scores

STATS = ("pearson", "spearman", "kendall_tau_b")
AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "mean": statistics.fmean,
    "median": statistics.median,
}
#: bootstrap resamples and seed of the agreement intervals (seeded: the same records, the same CIs)
BOOTSTRAP = 1000
SEED = 42
#: per-item numbers beside the score that a benchmark's aggregation reads, aggregated like the score
AGGREGATED_DATA = ("raw_score_0_to_5",)
#: smallest group reported per category: fewer items give no usable correlation
MIN_GROUP = 3


def agreement_with_ci(x: list[float], y: list[float], iterations: int = BOOTSTRAP, seed: int = SEED):
    """{n, pearson, spearman, kendall_tau_b, pairwise_agreement, <stat>_ci: [low, high]} (NaN undefined)."""
    from proctor_jobs.scoring.stats import agreement, agreement_bootstrap

    out: dict[str, Any] = {"n": len(x), **agreement(x, y)}
    intervals = agreement_bootstrap(x, y, iterations, seed) if iterations > 0 else {}
    for name in (*STATS, "pairwise_agreement"):
        out[f"{name}_ci"] = list(intervals.get(name, (math.nan, math.nan)))
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _as_only_judge(records: dict[str, dict[str, ItemRecord]], stage: str) -> dict[str, dict[str, ItemRecord]]:
    """The records as a one-judge run with `stage`'s records as its judge's."""
    return {**records, "judge": records.get(stage, {})}


def aggregate_records(
    benchmark: str,
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    entries: list[JudgeEntry],
    method: str,
) -> dict[str, ItemRecord]:
    """One synthetic judge record per item: the `method` of the scores of the judges that scored it."""
    scores = {e.stage: item_scores(benchmark, items, _as_only_judge(records, e.stage)) for e in entries}
    reduce = AGGREGATES[method]
    out: dict[str, ItemRecord] = {}
    for position, item in enumerate(items):
        given = [rows[position]["score"] for rows in scores.values()]
        values = [float(v) for v in given if v is not None]
        seen = [records.get(e.stage, {}).get(item["id"]) for e in entries]
        if not any(rec is not None for rec in seen):
            continue  # no judge has seen it yet: pending, as in a one-judge run
        if values:
            data: dict[str, Any] = {"judges": len(values)}
            for field in AGGREGATED_DATA:  # e.g. Vision2Code's raw rating beside its capped one
                raw = [rec.data[field] for rec in seen if rec is not None and _number(rec.data.get(field))]
                if raw and len(raw) == len(values):
                    data[field] = reduce([float(v) for v in raw])
            out[item["id"]] = ok(
                item["id"],
                "judge",
                score=reduce(values),
                reason=f"{method} of {len(values)} judge(s)",
                data=data,
            )
        else:
            out[item["id"]] = failed(item["id"], "judge", "no judge scored it")
    return out


def aggregate_result(
    benchmark: Any,
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    spec: dict[str, Any],
) -> dict[str, Any] | None:
    """The benchmark's aggregation over the judges' per-item mean or median (`spec.judgeAggregate`), or
    None when not asked for (or fewer than two judges have records)."""
    method = spec.get("judgeAggregate")
    entries = [e for e in judge_entries(spec) if e.configured and e.stage in records]
    if method not in AGGREGATES or len(entries) < 2:
        return None
    synthetic = aggregate_records(benchmark.name, items, records, entries, method)
    return benchmark.aggregate(items, {**records, "judge": synthetic}, spec)


def _pairs(a: list[dict], b: list[dict]) -> tuple[list[float], list[float], list[str]]:
    xs, ys, cats = [], [], []
    for row_a, row_b in zip(a, b, strict=True):
        if row_a["score"] is not None and row_b["score"] is not None:
            xs.append(float(row_a["score"]))
            ys.append(float(row_b["score"]))
            cats.append(row_a["category"])
    return xs, ys, cats


def pair_agreement(
    x: list[float], y: list[float], categories: list[str], iterations: int = BOOTSTRAP, seed: int = SEED
) -> dict[str, Any]:
    """Pooled agreement and, per category with at least MIN_GROUP common items, the same figures."""
    pooled = agreement_with_ci(x, y, iterations, seed)
    groups = {}
    for category in sorted(set(categories)):
        picked = [i for i, c in enumerate(categories) if c == category]
        if len(picked) >= MIN_GROUP:
            groups[category] = agreement_with_ci(
                [x[i] for i in picked], [y[i] for i in picked], iterations, seed
            )
    return {**pooled, "by_group": groups}


def panel_summary(
    benchmark: Any,
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    spec: dict[str, Any],
    human: dict[str, float] | None = None,
    iterations: int = BOOTSTRAP,
) -> dict[str, Any] | None:
    """{judges: {name: {stage, headline, score, scores}}, aggregate, agreement: [...], human: [...]}.

    None for a run with one judge (its numbers are the run's own). `benchmark` is the adapter."""
    entries = [e for e in judge_entries(spec) if e.configured and e.stage in records]
    if len(entries) < 2 and not human:
        return None
    judges: dict[str, Any] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        only = _as_only_judge(records, entry.stage)
        result = benchmark.aggregate(items, only, judge_spec(spec, entry))
        headline = result.get("headline")
        scores = result.get("scores") or {}
        judges[entry.name] = {
            "stage": entry.stage,
            "headline": headline,
            "score": scores.get(headline) if headline else None,
            "scores": scores,
            "counts": result.get("counts") or {},
        }
        rows[entry.name] = item_scores(benchmark.name, items, only)
    out: dict[str, Any] = {"judges": judges, "agreement": [], "bootstrap": iterations, "seed": SEED}
    result = aggregate_result(benchmark, items, records, spec)
    if result is not None:
        method = spec["judgeAggregate"]
        headline = result.get("headline")
        scores = result.get("scores") or {}
        out["aggregate"] = {
            "method": method,
            "headline": headline,
            "score": scores.get(headline) if headline else None,
            "scores": scores,
        }
    for a, b in combinations(judges, 2):
        xs, ys, cats = _pairs(rows[a], rows[b])
        out["agreement"].append({"a": a, "b": b, **pair_agreement(xs, ys, cats, iterations)})
    if human:
        out["human"] = []
        for name in judges:
            xs, ys, cats = [], [], []
            for row in rows[name]:
                if row["score"] is not None and row["id"] in human:
                    xs.append(human[row["id"]])
                    ys.append(float(row["score"]))
                    cats.append(row["category"])
            out["human"].append({"judge": name, **pair_agreement(xs, ys, cats, iterations)})
    return _json_safe(out)


def flat_scores(panel: dict[str, Any]) -> dict[str, float]:
    """`<judge>/<score>` for every judge and `<method>/<score>` for the aggregate (status, metrics)."""
    out: dict[str, float] = {}
    for name, judge in panel.get("judges", {}).items():
        out.update({f"{name}/{k}": v for k, v in judge["scores"].items() if isinstance(v, int | float)})
    aggregate = panel.get("aggregate")
    if aggregate:
        out.update(
            {f"aggregate/{k}": v for k, v in aggregate["scores"].items() if isinstance(v, int | float)}
        )
    return out
