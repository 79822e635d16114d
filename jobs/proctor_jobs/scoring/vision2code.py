"""Vision2Code leaderboard numbers and the original's result files.

The headline (`benchmark_score_0_to_5`) is the macro mean over source datasets of the per-sample
final ratings, as the paper's leaderboard reports it (image2code/evaluation/aggregate_scores.py:
`macro_mean_by_dataset`); beside it the micro mean, raw-score means, per-dataset and per-category
means, rating bins, the render success rate and mean pixel similarity. A sample whose render
failed is rated 0 and counts; a sample the rater never answered usably is *unrated* and left out
(with a count), as the original leaves out rows without a rating.

Exports: `benchmark_eval__<rater>.json` ({summary, rows}), `benchmark_summary__<rater>.json`,
`benchmark_eval__<rater>.csv` and one `<question_folder>/rating__<rater>.json` per sample, with the
original's field names, so its analysis scripts read them unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from typing import Any

from proctor_jobs.judge.vision2code_rubrics import RUBRIC_VERSION, resolve_dataset
from proctor_jobs.records import ItemRecord

BINS = ("0-1", "1-2", "2-3", "3-4", "4-5")
ROW_FIELDS = (
    "benchmark_version",
    "benchmark_split",
    "sample_id",
    "dataset",
    "subset",
    "source_filtered_split",
    "question_folder",
    "question",
    "render_success",
    "status",
    "similarity",
    "generated_code_chars",
    "rater_provider",
    "rater_model",
    "rater_reasoning_enabled",
    "rater_slug",
    "rating_status",
    "rubric_dataset",
    "rating_final_0_to_5",
    "rating_raw_score_0_to_5",
    "proctor_id",
)


def dataset_of(item: dict[str, Any]) -> str:
    return str(
        item.get("source_dataset")
        or resolve_dataset(item.get("sample_id"), item.get("question_folder"))
        or "unknown"
    )


def rater_slug(model: str | None) -> str:
    """`openai_<model>` with every run of non-alphanumerics as `_` (gpt-5.4-mini -> openai_gpt_5_4_mini)."""
    return "openai_" + (re.sub(r"[^a-z0-9]+", "_", (model or "judge").lower()).strip("_") or "judge")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def rated(rec: ItemRecord | None) -> bool:
    return rec is not None and rec.status == "ok" and rec.score is not None


def item_scores(
    items: list[dict[str, Any]], records: dict[str, dict[str, ItemRecord]]
) -> list[dict[str, Any]]:
    judge = records.get("judge", {})
    out = []
    for item in items:
        rec = judge.get(item["id"])
        out.append(
            {
                "id": item["id"],
                "category": dataset_of(item),
                "score": float(rec.score) if rated(rec) else None,
            }
        )
    return out


def _render_success(rec: ItemRecord | None) -> bool:
    return rec is not None and rec.status == "ok" and not rec.data.get("failure")


def summary(items: list[dict[str, Any]], records: dict[str, dict[str, ItemRecord]], spec: dict[str, Any]):
    """The original's summary object (`benchmark_summary__<rater>.json`)."""
    judge, render = records.get("judge", {}), records.get("render", {})
    finals: list[float] = []
    raws: list[float] = []
    by_dataset: dict[str, dict[str, list]] = defaultdict(
        lambda: {"final": [], "raw": [], "cats": defaultdict(list)}
    )
    bins = dict.fromkeys(BINS, 0)
    model = None
    for item in items:
        rec = judge.get(item["id"])
        if not rated(rec):
            continue
        model = model or rec.data.get("model")
        final, raw = float(rec.score), float(rec.data.get("raw_score_0_to_5", rec.score))
        finals.append(final)
        raws.append(raw)
        group = by_dataset[dataset_of(item)]
        group["final"].append(final)
        group["raw"].append(raw)
        for cid, result in (rec.data.get("category_scores") or {}).items():
            group["cats"][cid].append(float(result.get("score_0_to_5", 0.0)))
        bins[BINS[min(4, max(0, int(final)))]] += 1
    similarities = [
        float(r.data["similarity"])
        for r in render.values()
        if r.status == "ok" and r.data.get("similarity") is not None
    ]
    render_success = sum(1 for item in items if _render_success(render.get(item["id"])))
    candidate = spec.get("candidate") or {}
    dataset_means = {name: _mean(g["final"]) for name, g in by_dataset.items()}
    # The original averages per-dataset means already rounded to 4 decimals (B5 in docs/fidelity.md).
    macro = _mean([_r(m) for m in dataset_means.values() if m is not None])
    macro_raw = _mean([_r(m) for m in (_mean(g["raw"]) for g in by_dataset.values()) if m is not None])
    category_means = {
        f"{name}.{cid}": _r(_mean(values))
        for name, g in sorted(by_dataset.items())
        for cid, values in sorted(g["cats"].items())
    }
    splits = {item.get("benchmark_split") for item in items if item.get("benchmark_split")}
    return {
        "benchmark_split": splits.pop() if len(splits) == 1 else None,
        "model_kind": "openai" if candidate else None,
        "model_path": candidate.get("model"),
        "output_dir": None,
        "num_manifest_rows": len(items),
        "num_samples": len(items),
        "num_render_success": render_success,
        "render_success_rate": _r(render_success / len(items)) if items else None,
        "mean_similarity": _mean(similarities),
        "max_new_tokens": candidate.get("maxTokens"),
        "reasoning_effort": None,
        "base_url": candidate.get("url"),
        "num_skipped_existing_success": 0,
        "rubric_version": RUBRIC_VERSION,
        "rater_provider": "openai",
        "rater_model": model,
        "rater_reasoning_enabled": False,
        "rater_slug": rater_slug(model),
        "num_samples_evaluated": sum(1 for item in items if judge.get(item["id"]) is not None),
        "num_rated": len(finals),
        "benchmark_score_0_to_5": _r(macro),
        "mean_final_rating_0_to_5": _r(_mean(finals)),
        "mean_raw_score_0_to_5": _r(_mean(raws)),
        "macro_mean_final_rating_0_to_5": _r(macro),
        "macro_mean_raw_score_0_to_5": _r(macro_raw),
        "final_rating_bins_0_to_5": bins,
        "category_means_0_to_5": category_means,
        "by_dataset": {
            name: {
                "num_samples": len(g["final"]),
                "mean_final_rating_0_to_5": _r(_mean(g["final"])),
                "mean_raw_score_0_to_5": _r(_mean(g["raw"])),
                "category_means_0_to_5": {cid: _r(_mean(v)) for cid, v in sorted(g["cats"].items())},
            }
            for name, g in sorted(by_dataset.items())
        },
    }


def aggregate(
    items: list[dict[str, Any]], records: dict[str, dict[str, ItemRecord]], spec: dict[str, Any]
) -> dict[str, Any]:
    s = summary(items, records, spec)
    judge = records.get("judge", {})
    by_category: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for item in items:
        rec = judge.get(item["id"])
        if rated(rec):
            by_category[str(item.get("category") or "uncategorised")].append(float(rec.score))
        render = records.get("render", {}).get(item["id"])
        if render is not None and (render.status != "ok" or render.data.get("failure")):
            failures[render.data.get("failure") or f"render {render.status}"] += 1
    scores: dict[str, float] = {}
    if s["benchmark_score_0_to_5"] is not None:
        scores["benchmark_score_0_to_5"] = s["benchmark_score_0_to_5"]
        scores["mean_final_rating_0_to_5"] = s["mean_final_rating_0_to_5"]
        scores["macro_mean_raw_score_0_to_5"] = s["macro_mean_raw_score_0_to_5"]
        scores["mean_raw_score_0_to_5"] = s["mean_raw_score_0_to_5"]
    if s["render_success_rate"] is not None:
        scores["render_success_rate"] = s["render_success_rate"]
    if s["mean_similarity"] is not None:
        scores["mean_similarity"] = round(s["mean_similarity"], 4)
    for name, group in s["by_dataset"].items():
        if group["mean_final_rating_0_to_5"] is not None:
            scores[f"dataset:{name}"] = group["mean_final_rating_0_to_5"]
    categories = {
        name: {"n": len(v), "mean_final_rating_0_to_5": _r(_mean(v))}
        for name, v in sorted(by_category.items())
    }
    return {
        "headline": "benchmark_score_0_to_5" if "benchmark_score_0_to_5" in scores else None,
        "scores": scores,
        "breakdowns": {
            "by_dataset": s["by_dataset"],
            "by_category": categories,
            "category_means_0_to_5": s["category_means_0_to_5"],
            "final_rating_bins_0_to_5": s["final_rating_bins_0_to_5"],
            "render_failures": dict(failures),
        },
        "counts": {
            "items": len(items),
            "rated": s["num_rated"],
            "unrated": s["num_samples_evaluated"] - s["num_rated"],
            "render_success": s["num_render_success"],
            "datasets": len(s["by_dataset"]),
        },
    }


def _row(
    item: dict[str, Any], records: dict[str, dict[str, ItemRecord]], s: dict[str, Any]
) -> dict[str, Any]:
    judge = records.get("judge", {}).get(item["id"])
    render = records.get("render", {}).get(item["id"])
    data = judge.data if judge is not None else {}
    code = (render.data.get("code") if render is not None else None) or ""
    return {
        "benchmark_version": item.get("benchmark_version"),
        "benchmark_split": item.get("benchmark_split"),
        "sample_id": item.get("sample_id"),
        "dataset": dataset_of(item),
        "subset": item.get("subset") or item.get("source_subset"),
        "source_filtered_split": item.get("split"),
        "question_folder": item.get("question_folder"),
        "question": item.get("question"),
        "render_success": _render_success(render),
        "status": "ok"
        if _render_success(render)
        else ((render.data.get("failure") if render else None) or "missing"),
        "similarity": render.data.get("similarity") if render is not None else None,
        "generated_code_chars": len(code),
        "rater_provider": s["rater_provider"],
        "rater_model": s["rater_model"],
        "rater_reasoning_enabled": False,
        "rater_slug": s["rater_slug"],
        "rating_status": data.get("status")
        if rated(judge)
        else ("unrated" if judge is not None else "missing"),
        "rubric_dataset": data.get("rubric_dataset"),
        "rating_final_0_to_5": float(judge.score) if rated(judge) else None,
        "rating_raw_score_0_to_5": data.get("raw_score_0_to_5") if rated(judge) else None,
        "proctor_id": item["id"],
    }


_RATING_FIELDS = (
    "rubric_version",
    "rubric_dataset",
    "source_dataset",
    "status",
    "execution_status",
    "execution_detail",
    "execution_error_present",
    "reference_image_path",
    "candidate_image_path",
    "candidate_inspection",
    "category_scores",
    "raw_score_0_to_5",
    "raw_visual_score_0_to_5",
    "provisional_rating_0_to_5",
    "applied_caps",
    "final_rating_0_to_5",
    "strengths",
    "issues",
    "overall_summary",
)


def exports(
    items: list[dict[str, Any]], records: dict[str, dict[str, ItemRecord]], spec: dict[str, Any]
) -> dict[str, bytes]:
    if not records.get("judge"):
        return {}
    s = summary(items, records, spec)
    slug = s["rater_slug"]
    rows = [_row(item, records, s) for item in items]
    out = {
        f"benchmark_eval__{slug}.json": json.dumps(
            {"summary": s, "rows": rows}, indent=2, ensure_ascii=False
        ).encode(),
        f"benchmark_summary__{slug}.json": json.dumps(s, indent=2, ensure_ascii=False).encode(),
    }
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ROW_FIELDS))
    writer.writeheader()
    writer.writerows(rows)
    out[f"benchmark_eval__{slug}.csv"] = buffer.getvalue().encode()
    judge = records["judge"]
    for item in items:
        rec = judge.get(item["id"])
        if rated(rec):
            folder = re.sub(r"[^A-Za-z0-9._-]", "_", str(item.get("question_folder") or item["id"]))
            rating = {k: rec.data[k] for k in _RATING_FIELDS if k in rec.data}
            out[f"ratings/{folder}/rating__{slug}.json"] = json.dumps(
                rating, indent=2, ensure_ascii=False
            ).encode()
    return out
