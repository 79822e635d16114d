"""One score per item, for reports and run comparisons, whatever the benchmark.

ArtifactsBench and Vision2Code use their judge's score and their leaderboard category (domain,
source dataset). Any other benchmark falls back to the score of the item's last stage that has a
record, and a category from the item's `category`, `class` or `task_type` field.
"""

from __future__ import annotations

from typing import Any

from proctor_jobs.records import ItemRecord

#: The score range of each benchmark's per-item score, for plots.
SCORE_RANGES = {"artifactsbench": (0.0, 100.0), "vision2code": (0.0, 5.0), "humanevalv": (0.0, 1.0)}

#: How a benchmark's summary states a mean of its per-item scores: (factor, unit, what the mean is).
#: HumanEval-V's samples pass (1) or fail (0) and its summary reports pass@k in percent, so a mean
#: over samples is pass@1 in percent; the others report their items' own scale.
SUMMARY_UNITS: dict[str, tuple[float, str, str]] = {
    "humanevalv": (100.0, "%", "pass@1"),
    "artifactsbench": (1.0, "0–100", "mean score"),
    "vision2code": (1.0, "0–5", "mean rating"),
}


def summary_units(benchmark: str) -> tuple[float, str, str]:
    """(factor, unit, label) to show a mean of `benchmark`'s item scores as its summary does."""
    return SUMMARY_UNITS.get(benchmark, (1.0, "", "mean score"))


def item_scores(
    benchmark: str,
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    stage_order: list[str] | None = None,
) -> list[dict[str, Any]]:
    """[{id, category, score (None when not scored), stage}] in item order."""
    if benchmark == "artifactsbench":
        from proctor_jobs.scoring.artifactsbench import item_scores as scores

        return [{**row, "stage": "judge"} for row in scores(items, records)]
    if benchmark == "vision2code":
        from proctor_jobs.scoring.vision2code import item_scores as scores

        return [{**row, "stage": "judge"} for row in scores(items, records)]
    stages = list(reversed(stage_order or list(records)))
    out = []
    for item in items:
        score, stage = None, None
        for name in stages:
            rec = records.get(name, {}).get(item["id"])
            if rec is not None:
                stage = name
                if rec.status == "ok" and rec.score is not None:
                    score = float(rec.score)
                break
        category = item.get("category") or item.get("class") or item.get("task_type") or "all"
        out.append({"id": item["id"], "category": str(category), "score": score, "stage": stage})
    return out
