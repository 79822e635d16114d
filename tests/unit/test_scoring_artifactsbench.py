"""ArtifactsBench leaderboard: AVG with unjudgeable items excluded (as the original) and as zero; export."""

from __future__ import annotations

import json

import pytest

from proctor_jobs.records import failed, ok
from proctor_jobs.scoring import artifactsbench as AB


def item(i, cls, difficulty="easy"):
    return {
        "id": f"t{i}",
        "index": i,
        "question": f"q{i}",
        "checklist": [],
        "class": cls,
        "difficulty": difficulty,
        "answer": f"a{i}",
    }


@pytest.fixture
def run():
    items = [
        item(1, "Game Development-Puzzle", "easy"),
        item(2, "Game Development-Strategy", "hard"),
        item(3, "SVG Generation-SVG Icons/Logos", "easy"),
        item(4, "Web Applications-Communication", "medium"),
        item(5, "Data Science-Statistical Analysis", "hard"),
        item(6, "Management Systems-File Management", "medium"),
    ]
    judge = {
        "t1": ok("t1", "judge", score=80.0, data={"score_text": "80", "reply": "R1", "text_only": False}),
        "t2": ok("t2", "judge", score=40.0, data={"score_text": "40", "reply": "R2", "text_only": True}),
        "t3": failed("t3", "judge", "unjudgeable: no usable reply in 3 calls", data={"reply": "garbage"}),
        "t4": ok("t4", "judge", score=60.0, data={"score_text": "60", "reply": "R4"}),
        "t5": ok("t5", "judge", score=30.0, data={"score_text": "30", "reply": "R5"}),
        # t6 has no judge record yet (pending)
    }
    return items, {"judge": judge}


def test_avg_excludes_unjudgeable_as_the_original_and_reports_as_zero(run):
    items, records = run
    result = AB.aggregate(items, records, {})
    assert result["headline"] == "AVG"
    assert result["scores"]["AVG"] == pytest.approx((80 + 40 + 60 + 30) / 4)
    assert result["scores"]["AVG_unjudgeable_as_zero"] == pytest.approx((80 + 40 + 0 + 60 + 30) / 5)
    assert result["counts"] | {"rendered": {}} == {
        "items": 6,
        "rendered": {},
        "judged": 4,
        "unjudgeable": 1,
        "pending": 1,
        "text_only": 1,
    }


def test_leaderboard_columns_and_other_domains(run):
    items, records = run
    scores = AB.aggregate(items, records, {})["scores"]
    assert scores["GAME"] == pytest.approx(60.0)
    assert scores["WEB"] == 60.0
    assert "SVG" not in scores  # its only task was unjudgeable
    assert scores["Data Science"] == 30.0
    assert scores["difficulty:easy"] == 80.0 and scores["difficulty:hard"] == 35.0


def test_breakdowns_carry_counts_per_domain(run):
    items, records = run
    breakdowns = AB.aggregate(items, records, {})["breakdowns"]
    svg = breakdowns["by_domain"]["SVG Generation"]
    assert (svg["n"], svg["judged"], svg["unjudgeable"], svg["mean"], svg["mean_unjudgeable_as_zero"]) == (
        1,
        0,
        1,
        None,
        0.0,
    )
    assert breakdowns["by_domain"]["Game Development"]["column"] == "GAME"
    assert sum(breakdowns["unjudgeable_reasons"].values()) == 1


def test_without_a_judge_stage_there_is_no_headline():
    result = AB.aggregate([item(1, "Other-X")], {"render": {}}, {})
    assert result["headline"] is None and result["scores"] == {}


def test_export_is_the_original_result_format(run):
    items, records = run
    files = AB.exports(items, records, {})
    lines = [json.loads(x) for x in files["artifactsbench_qvl.jsonl"].decode().splitlines()]
    assert [x["index"] for x in lines] == [1, 2, 3, 4, 5, 6]
    first = lines[0]
    assert first["qvl_ans"] == "80" and first["qvl_reason"] == "R1"
    assert (
        first["question"] == "q1" and first["answer"] == "a1" and first["class"] == "Game Development-Puzzle"
    )
    assert lines[2]["qvl_ans"] is None and lines[2]["qvl_reason"] == "garbage"
    assert lines[5]["qvl_ans"] is None
    # The original's own averaging code (float(qvl_ans), skipping failures) gives our AVG.
    parsed = []
    for line in lines:
        try:
            parsed.append(float(line["qvl_ans"]))
        except (TypeError, ValueError):
            continue
    assert AB.aggregate(items, records, {})["scores"]["AVG"] == pytest.approx(sum(parsed) / len(parsed))


def test_export_prefix_follows_the_spec(run):
    items, records = run
    files = AB.exports(items, records, {"scoring": {"judgeFieldPrefix": "gemini"}})
    line = json.loads(files["artifactsbench_gemini.jsonl"].decode().splitlines()[0])
    assert "gemini_ans" in line and "gemini_reason" in line
