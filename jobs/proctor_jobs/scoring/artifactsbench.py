"""ArtifactsBench leaderboard numbers and the original's result file.

Scores are the judge's Overall Score (0-100). The published AVG is the mean over every task the
judge scored: the original's `infer_*.py` skips items whose reply has no parseable score
(`float(None)` raises and the item is counted as an error), so unjudgeable items are *excluded*.
Proctor reports that number as `AVG` and, beside it, `AVG_unjudgeable_as_zero`, plus counts, so a
judge that fails often cannot flatter a model unnoticed.

Leaderboard columns come from the domain prefix of `class` ("Game Development-Puzzle" -> Game
Development): GAME, SVG, WEB, SI, MS as published; the other domains (Data Science, Utility Tools,
Multimedia Editing, Mermaid Flowcharts, Other, ...) are reported under their own names. SV, MMD,
HD, II come from a classification that was never released and cannot be computed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from proctor_jobs.records import ItemRecord

LEADERBOARD_COLUMNS = {
    "Game Development": "GAME",
    "SVG Generation": "SVG",
    "Web Applications": "WEB",
    "Simulation & Modeling": "SI",
    "Management Systems": "MS",
}
DEFAULT_FIELD_PREFIX = "qvl"  # the original's vLLM-judge script writes qvl_reason / qvl_ans


def domain(item: dict[str, Any]) -> str:
    cls = str(item.get("class") or "").strip()
    return cls.split("-", 1)[0].strip() or "Unknown"


def judge_score(rec: ItemRecord | None) -> float | None:
    """The item's score, or None when the judge could not score it."""
    if rec is None or rec.status != "ok" or rec.score is None:
        return None
    return float(rec.score)


def _group(rows: list[tuple[float | None, bool]]) -> dict[str, Any]:
    """rows: (score or None, judged-at-all) for the items of one group."""
    attempted = [score for score, seen in rows if seen]
    judged = [s for s in attempted if s is not None]
    return {
        "n": len(rows),
        "judged": len(judged),
        "unjudgeable": len(attempted) - len(judged),
        "pending": len(rows) - len(attempted),
        "mean": round(sum(judged) / len(judged), 4) if judged else None,
        "mean_unjudgeable_as_zero": round(sum(judged) / len(attempted), 4) if attempted else None,
    }


def item_scores(
    items: list[dict[str, Any]], records: dict[str, dict[str, ItemRecord]]
) -> list[dict[str, Any]]:
    """Per item: id, category (domain) and score (None if unjudgeable or not judged yet)."""
    judge = records.get("judge", {})
    return [
        {"id": item["id"], "category": domain(item), "score": judge_score(judge.get(item["id"]))}
        for item in items
    ]


def aggregate(
    items: list[dict[str, Any]], records: dict[str, dict[str, ItemRecord]], spec: dict[str, Any]
) -> dict[str, Any]:
    judge = records.get("judge")
    render = records.get("render", {})
    render_kinds = Counter(
        ((rec.data.get("extraction") or {}).get("kind") or rec.status) if rec.status == "ok" else rec.status
        for rec in render.values()
    )
    counts: dict[str, Any] = {"items": len(items), "rendered": dict(render_kinds)}
    if not judge:
        return {
            "headline": None,
            "scores": {},
            "breakdowns": {"render": dict(render_kinds)},
            "counts": counts,
        }

    by_domain: dict[str, list] = defaultdict(list)
    by_difficulty: dict[str, list] = defaultdict(list)
    everything: list[tuple[float | None, bool]] = []
    unjudgeable_reasons: Counter[str] = Counter()
    text_only = 0
    for item in items:
        rec = judge.get(item["id"])
        row = (judge_score(rec), rec is not None)
        everything.append(row)
        by_domain[domain(item)].append(row)
        by_difficulty[str(item.get("difficulty") or "unknown")].append(row)
        if rec is not None and row[0] is None:
            unjudgeable_reasons[(rec.reason or rec.status).splitlines()[0][:120]] += 1
        if rec is not None and rec.data.get("text_only"):
            text_only += 1

    overall = _group(everything)
    scores: dict[str, float] = {}
    if overall["mean"] is not None:
        scores["AVG"] = overall["mean"]
        scores["AVG_unjudgeable_as_zero"] = overall["mean_unjudgeable_as_zero"]
    domains = {name: _group(rows) for name, rows in sorted(by_domain.items())}
    for name, column in LEADERBOARD_COLUMNS.items():
        if domains.get(name, {}).get("mean") is not None:
            scores[column] = domains[name]["mean"]
    for name, group in domains.items():
        if name not in LEADERBOARD_COLUMNS and group["mean"] is not None:
            scores[name] = group["mean"]
    difficulties = {name: _group(rows) for name, rows in sorted(by_difficulty.items())}
    for name, group in difficulties.items():
        if group["mean"] is not None:
            scores[f"difficulty:{name}"] = group["mean"]
    for name, group in domains.items():
        group["column"] = LEADERBOARD_COLUMNS.get(name)
    counts.update(
        judged=overall["judged"],
        unjudgeable=overall["unjudgeable"],
        pending=overall["pending"],
        text_only=text_only,
    )
    return {
        "headline": "AVG" if "AVG" in scores else None,
        "scores": scores,
        "breakdowns": {
            "by_domain": domains,
            "by_difficulty": difficulties,
            "unjudgeable_reasons": dict(unjudgeable_reasons.most_common()),
            "render": dict(render_kinds),
        },
        "counts": counts,
    }


def exports(
    items: list[dict[str, Any]], records: dict[str, dict[str, ItemRecord]], spec: dict[str, Any]
) -> dict[str, bytes]:
    """The original's output: each input line plus `<prefix>_reason` (reply) and `<prefix>_ans` (score)."""
    judge = records.get("judge")
    if not judge:
        return {}
    prefix = (spec.get("scoring") or {}).get("judgeFieldPrefix") or DEFAULT_FIELD_PREFIX
    lines = []
    for item in items:
        rec = judge.get(item["id"])
        data = rec.data if rec is not None else {}
        row = {k: v for k, v in item.items() if k not in ("id", "generated")}
        row[f"{prefix}_reason"] = data.get("reply") or ""
        row[f"{prefix}_ans"] = data.get("score_text") if rec is not None and rec.status == "ok" else None
        row["proctor_id"] = item["id"]
        lines.append(json.dumps(row, ensure_ascii=False))
    return {f"artifactsbench_{prefix}.jsonl": ("\n".join(lines) + "\n").encode()}
