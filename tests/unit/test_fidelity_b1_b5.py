"""B1-B5: Proctor reproduces the original harnesses on exact inputs (their few lines re-implemented
here as the reference; see docs/fidelity.md)."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pytest

from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.judge.vision2code_rating import parse_json_object
from proctor_jobs.records import ok
from proctor_jobs.render.extract import extract
from proctor_jobs.scoring import vision2code as v2c_scoring
from proctor_jobs.scoring.passk import mean_pass_at_k

# --- B1: ArtifactsBench faithful profile, the "not found" insertion is a re.sub template ------------


def original_not_found(page: str, css_pending: list[str]) -> str:
    """The original's insertion: re.sub with a replacement built from the file name."""
    for name in css_pending:
        page = re.sub("</head>", f"<style>/* {name} not found in result */</style>\n</head>", page, count=1)
    return page


def answer_with_unreferenced_css(name: str) -> str:
    # The page is the first html block; the references come from the last one, so the CSS block is
    # named after a reference the page does not have: it stays "not found".
    return (
        "```html\n<html><head><title>t</title></head><body>first</body></html>\n```\n"
        f'```html\n<html><head><link rel="stylesheet" href="{name}"></head><body>last</body></html>\n```\n'
        "```css\nbody { color: red; }\n```\n"
    )


def test_b1_a_bad_escape_in_the_file_name_falls_back_to_the_raw_html_element():
    name = r"a\d.css"
    with pytest.raises(re.error):
        original_not_found("<head></head>", [name])
    result = extract(answer_with_unreferenced_css(name), "faithful")
    assert result.kind == "html" and "block assembly failed: error" in result.reason
    last = re.findall(r"(<html[^>]*>.*?</html>)", answer_with_unreferenced_css(name), re.DOTALL)[-1]
    assert result.html == last  # the original's fallback: the last raw <html> element


def test_b1_a_backslash_t_in_the_file_name_becomes_a_tab():
    name = r"a\tb.css"
    page = "<html><head><title>t</title></head><body>first</body></html>\n"
    expected = original_not_found(page, [name])
    assert "a\tb.css not found" in expected
    assert extract(answer_with_unreferenced_css(name), "faithful").html == expected


# --- B2: the answer is the first non-empty of model_infer_result, output, answer ---------------------


def original_get_answer(row: dict) -> str:
    answer = row.get("model_infer_result") or row.get("output") or row.get("answer") or ""
    return answer.split("</think>")[-1].strip()


@pytest.mark.parametrize(
    "row",
    [
        {"index": 1, "answer": "A", "model_infer_result": "M", "output": "O"},
        {"index": 1, "answer": "A", "model_infer_result": "", "output": "O"},
        {"index": 1, "answer": "A", "output": ""},
        {"index": 1, "answer": "", "model_infer_result": ""},
    ],
)
def test_b2_answer_key_order_and_emptiness_match_the_original(row):
    [answer] = get_benchmark("artifactsbench").parse_answers([row])
    assert answer["answer"].split("</think>")[-1].strip() == original_get_answer(row)


# --- B3: HumanEval-V pass@k rounding --------------------------------------------------------------


def original_pass_at_k(passed_by_qid: dict[str, list[bool]], k: int) -> float:
    total = np.array([len(v) for v in passed_by_qid.values()])
    correct = np.array([sum(v) for v in passed_by_qid.values()])

    def estimator(n, c):
        return 0 if n - c < k else np.prod(1.0 - k / np.arange(n - c + 1, n + 1))

    values = np.array([1.0 - estimator(int(n), int(c)) for n, c in zip(total, correct, strict=True)])
    return round(float(values.mean()) * 100, 1)


def test_b3_pass_at_k_rounds_like_the_original_at_an_exact_tie():
    counts = [0, 0, 0, 0, 1, 1, 1, 6]
    by_qid = {f"q{i}": [j < c for j in range(6)] for i, c in enumerate(counts)}
    # mean 0.18749999999999997 (numpy's pairwise sum) * 100 -> 18.7; 100 * sum / len -> 18.75 -> 18.8
    assert original_pass_at_k(by_qid, 1) == 18.7
    for k in (1, 3):
        assert round(mean_pass_at_k(by_qid.values(), k), 1) == original_pass_at_k(by_qid, k)
    # and through the adapter's aggregate
    items = [{"id": f"{q}/{j}", "qid": q} for q, v in by_qid.items() for j in range(6)]
    records = {
        "oracle": {
            f"{q}/{j}": ok(f"{q}/{j}", "oracle", data={"passed": passed})
            for q, v in by_qid.items()
            for j, passed in enumerate(v)
        }
    }
    scores = get_benchmark("humanevalv").aggregate(items, records, {})["scores"]
    assert scores["pass@1"] == 18.7 and scores["pass@3"] == original_pass_at_k(by_qid, 3)


# --- B4: only a leading think block is stripped from the rater's reply -------------------------------


def original_strip(text: str) -> str:
    return re.sub(r"^\s*<think>.*?</think>", "", text, count=1, flags=re.DOTALL).strip()


@pytest.mark.parametrize(
    "reply",
    [
        '<think>hm {"x": 1}</think>\n{"summary": "ok"}',
        '{"summary": "keeps <think>this</think> text"}',
        '  <think>a</think> {"summary": "<think>b</think>"}',
    ],
)
def test_b4_only_a_leading_think_block_is_removed(reply):
    import json

    assert parse_json_object(reply) == json.loads(original_strip(reply))


# --- B5: Vision2Code macro mean over per-dataset means rounded to 4 decimals -------------------------


def original_macro(rows: list[tuple[str, float]]) -> float:
    groups: dict[str, list[float]] = defaultdict(list)
    for dataset, rating in rows:
        groups[dataset].append(rating)
    means = [round(sum(v) / len(v), 4) for v in groups.values()]
    return round(sum(means) / len(means), 4)


def test_b5_macro_mean_of_rounded_dataset_means():
    rows = [("A", 0.0), ("A", 0.0), ("A", 0.1), ("B", 0.5)]  # means 0.0333.. and 0.5
    assert original_macro(rows) == 0.2666  # unrounded means give 0.2667
    items = [{"id": str(i), "source_dataset": d} for i, (d, _) in enumerate(rows)]
    records = {"judge": {str(i): ok(str(i), "judge", score=r) for i, (_, r) in enumerate(rows)}}
    result = v2c_scoring.aggregate(items, records, {})
    assert result["scores"]["benchmark_score_0_to_5"] == original_macro(rows)
