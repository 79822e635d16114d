"""Vision2Code leaderboard: macro over datasets, micro, bins, render success, and the original's files."""

from __future__ import annotations

import json

import pytest

from proctor_jobs.judge import vision2code_rating as R
from proctor_jobs.records import failed, ok
from proctor_jobs.scoring import vision2code as V

CLEAN = {"candidate_readable": True, "is_blank_or_degenerate": False, "checks_triggered": []}


def judged(item_id, dataset, scores):
    rubric, version = R.rubric_for(dataset)
    ids = [c["id"] for c in rubric["categories"]]
    parsed = {
        "category_scores": dict(zip(ids, scores, strict=True)),
        "rationales": {},
        "overall_summary": "s",
    }
    rating = R.rating(parsed, rubric, version, dict(CLEAN))
    return ok(item_id, "judge", score=rating["final_rating_0_to_5"], data={**rating, "model": "gpt-5.4-mini"})


def render(item_id, failure=None, similarity=0.9):
    return ok(
        item_id,
        "render",
        data={"failure": failure, "similarity": similarity, "code": "x" * 10},
        evidence={} if failure else {"image": f"k/{item_id}.png"},
    )


@pytest.fixture
def run():
    items = [
        {
            "id": "a1",
            "sample_id": "s1",
            "source_dataset": "ChartQA",
            "category": "Charts&Plots",
            "question_folder": "ChartQA_test_000001_aa",
            "benchmark_split": "test-mini",
        },
        {
            "id": "a2",
            "sample_id": "s2",
            "source_dataset": "ChartQA",
            "category": "Charts&Plots",
            "question_folder": "ChartQA_test_000002_bb",
            "benchmark_split": "test-mini",
        },
        {
            "id": "a3",
            "sample_id": "s3",
            "source_dataset": "ChartQA",
            "category": "Charts&Plots",
            "question_folder": "ChartQA_test_000003_cc",
            "benchmark_split": "test-mini",
        },
        {
            "id": "b1",
            "sample_id": "s4",
            "source_dataset": "Physics",
            "category": "Science",
            "question_folder": "Physics_test_000001_dd",
            "benchmark_split": "test-mini",
        },
        {
            "id": "c1",
            "sample_id": "s5",
            "source_dataset": "DocVQA",
            "category": "Documents",
            "question_folder": "DocVQA_test_000001_ee",
            "benchmark_split": "test-mini",
        },
    ]
    rubric, version = R.rubric_for("DocVQA")
    render_failed = R.render_failure_rating(rubric, version, "timeout")
    records = {
        "render": {
            "a1": render("a1"),
            "a2": render("a2"),
            "a3": render("a3"),
            "b1": render("b1"),
            "c1": render("c1", failure="timeout", similarity=None),
        },
        "judge": {
            "a1": judged("a1", "ChartQA", [4, 4, 4, 4]),  # 4.0
            "a2": judged("a2", "ChartQA", [5, 5, 5, 5]),  # 5.0
            "a3": failed("a3", "judge", "unrated: no usable reply in 3 calls"),
            "b1": judged("b1", "Physics", [2, 2, 2, 2]),  # 2.0
            "c1": ok("c1", "judge", score=0.0, data={**render_failed, "model": "gpt-5.4-mini"}),
        },
    }
    return items, records


def test_headline_is_the_macro_mean_over_datasets(run):
    items, records = run
    scores = V.aggregate(items, records, {})["scores"]
    # ChartQA mean 4.5 (a3 unrated, left out), Physics 2.0, DocVQA 0.0 (render failed)
    assert scores["benchmark_score_0_to_5"] == pytest.approx((4.5 + 2.0 + 0.0) / 3, abs=1e-4)
    assert scores["mean_final_rating_0_to_5"] == pytest.approx((4 + 5 + 2 + 0) / 4)
    assert scores["dataset:ChartQA"] == 4.5
    assert scores["render_success_rate"] == pytest.approx(0.8)
    assert scores["mean_similarity"] == pytest.approx(0.9)


def test_bins_categories_and_counts(run):
    items, records = run
    result = V.aggregate(items, records, {})
    assert result["breakdowns"]["final_rating_bins_0_to_5"] == {
        "0-1": 1,
        "1-2": 0,
        "2-3": 1,
        "3-4": 0,
        "4-5": 2,
    }
    assert result["breakdowns"]["by_category"]["Charts&Plots"] == {"n": 2, "mean_final_rating_0_to_5": 4.5}
    assert result["breakdowns"]["category_means_0_to_5"]["ChartQA.numeric_information_fidelity"] == 4.5
    assert result["breakdowns"]["render_failures"] == {"timeout": 1}
    assert result["counts"] == {"items": 5, "rated": 4, "unrated": 1, "render_success": 4, "datasets": 3}


def test_summary_has_the_original_fields(run, repo_root):
    items, records = run
    original = json.loads((repo_root / "tests/fixtures/judge/v2c_benchmark_summary.json").read_text())
    ours = V.summary(items, records, {})
    assert set(original) <= set(ours)
    assert ours["rater_slug"] == "openai_gpt_5_4_mini"
    assert set(ours["by_dataset"]["ChartQA"]) == set(original["by_dataset"]["ChartQA"])
    assert ours["benchmark_split"] == "test-mini"


def test_exports_in_the_original_layout(run):
    items, records = run
    files = V.exports(items, records, {})
    slug = "openai_gpt_5_4_mini"
    evaluation = json.loads(files[f"benchmark_eval__{slug}.json"])
    assert set(evaluation) == {"summary", "rows"}
    rows = {row["sample_id"]: row for row in evaluation["rows"]}
    assert rows["s1"]["rating_final_0_to_5"] == 4.0 and rows["s1"]["render_success"] is True
    assert rows["s3"]["rating_status"] == "unrated" and rows["s3"]["rating_final_0_to_5"] is None
    assert rows["s5"]["status"] == "timeout" and rows["s5"]["rating_final_0_to_5"] == 0.0
    assert json.loads(files[f"benchmark_summary__{slug}.json"]) == evaluation["summary"]
    assert (
        files[f"benchmark_eval__{slug}.csv"]
        .decode()
        .startswith("benchmark_version,benchmark_split,sample_id")
    )
    rating = json.loads(files[f"ratings/ChartQA_test_000001_aa/rating__{slug}.json"])
    assert rating["final_rating_0_to_5"] == 4.0 and "model" not in rating


def test_macro_mean_equals_the_originals_aggregate_function(run):
    """The original's macro_mean_by_dataset (restated): mean of per-dataset means of rated rows."""
    items, records = run
    rows = json.loads(V.exports(items, records, {})["benchmark_eval__openai_gpt_5_4_mini.json"])["rows"]
    groups: dict[str, list[float]] = {}
    for row in rows:
        if row["rating_final_0_to_5"] is not None:
            groups.setdefault(row["dataset"], []).append(row["rating_final_0_to_5"])
    expected = sum(sum(v) / len(v) for v in groups.values()) / len(groups)
    assert V.aggregate(items, records, {})["scores"]["benchmark_score_0_to_5"] == pytest.approx(
        expected, abs=1e-4
    )
