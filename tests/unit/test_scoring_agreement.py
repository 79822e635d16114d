"""`proctor agreement` reproduces the Vision2Code authors' published human-alignment correlations."""

from __future__ import annotations

import csv
import json

import pytest

from proctor.cli import main

METRICS = [
    "ours_final",
    "generic_final",
    "cosine_image_only_0_to_5",
    "cosine_image_only_0_to_5_all_rows",
    "cosine_image_plus_text_0_to_5",
    "cosine_image_plus_text_0_to_5_all_rows",
]


@pytest.fixture
def fixtures(repo_root):
    return repo_root / "tests/fixtures/judge"


def published(fixtures):
    with (fixtures / "human_alignment_correlations.csv").open() as handle:
        return {(r["group_value"], r["metric"]): r for r in csv.DictReader(handle)}


def run_agreement(capsys, *args) -> dict:
    assert main(["agreement", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_pooled_pearson_and_spearman_match_the_paper_to_six_decimals(capsys, fixtures):
    args = [fixtures / "human_alignment_joined.csv", "--human", "human_rating_0_to_5", "--bootstrap", "200"]
    for metric in METRICS:
        args += ["--metric", metric]
    result = run_agreement(capsys, *args)
    expected = published(fixtures)
    assert len(result["results"]) == len(METRICS)
    for row in result["results"]:
        paper = expected[("all", row["metric"])]
        assert row["n"] == int(paper["n"]) and row["missing"] == int(paper["num_missing_metric"])
        assert round(row["pearson"], 6) == round(float(paper["pearson"]), 6), row["metric"]
        assert round(row["spearman"], 6) == round(float(paper["spearman"]), 6), row["metric"]
        assert row["mean_human"] == pytest.approx(float(paper["mean_human"]), abs=1e-9)
        assert row["mean_metric"] == pytest.approx(float(paper["mean_metric"]), abs=1e-9)
        low, high = row["pearson_ci"]
        assert low < row["pearson"] < high


def test_per_model_groups_match_too(capsys, fixtures):
    result = run_agreement(
        capsys,
        fixtures / "human_alignment_joined.csv",
        "--human",
        "human_rating_0_to_5",
        "--metric",
        "ours_final",
        "--metric",
        "generic_final",
        "--group-by",
        "model_slug",
        "--bootstrap",
        "0",
    )
    expected = published(fixtures)
    grouped = [r for r in result["results"] if r["group"] == "model_slug"]
    assert len(grouped) == 6
    for row in grouped:
        paper = expected[(row["group_value"], row["metric"])]
        assert round(row["pearson"], 6) == round(float(paper["pearson"]), 6)
        assert round(row["spearman"], 6) == round(float(paper["spearman"]), 6)
        assert row["pearson_ci"] == [None, None]


def test_same_seed_same_intervals(capsys, fixtures):
    args = [
        fixtures / "human_alignment_joined.csv",
        "--human",
        "human_rating_0_to_5",
        "--metric",
        "ours_final",
        "--bootstrap",
        "300",
        "--seed",
        "9",
    ]
    assert run_agreement(capsys, *args) == run_agreement(capsys, *args)


def test_missing_column_names_the_column(capsys, fixtures):
    code = main(
        [
            "agreement",
            str(fixtures / "human_alignment_joined.csv"),
            "--human",
            "human_rating_0_to_5",
            "--metric",
            "no_such_metric",
        ]
    )
    assert code == 2
    assert "no_such_metric" in capsys.readouterr().err
