"""The ArtifactsBench judge prompt's structure and the original's score parsing."""

from __future__ import annotations

import json

import pytest

from proctor_jobs.judge import artifactsbench_prompt as P


@pytest.fixture
def task(repo_root):
    line = (repo_root / "tests/fixtures/judge/artifactsbench_tasks.jsonl").read_text().splitlines()[0]
    return json.loads(line)


def test_prompt_inserts_the_checklist_as_the_original_does(task):
    prompt = P.build_prompt(task["checklist"], task["question"], "<html></html>")
    # string.Template substitutes str(list): a Python repr with single quotes, not JSON.
    assert str(task["checklist"]) in prompt
    assert json.dumps(task["checklist"]) not in prompt
    assert "'maxScore': 10" in prompt


def test_prompt_sections_come_in_the_original_order(task):
    prompt = P.build_prompt(task["checklist"], task["question"], "ANSWER-TEXT")
    order = [
        "strict",
        "Your role",
        "Responsibilities:",
        "Attitude:",
        "last HTML or SVG code segment",
        "**Scoring Criteria:**",
        str(task["checklist"]),
        '"Overall Score": "35"',
        "``` Reason:",
        P.PROBLEM_START,
        task["question"],
        P.PROBLEM_END,
        P.ANSWER_START,
        "ANSWER-TEXT",
        P.ANSWER_END,
    ]
    positions = [prompt.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "```json\n{\n" in prompt  # the example output is a JSON block


def test_prompt_keeps_braces_in_answers_and_questions():
    prompt = P.build_prompt([], "use {curly} braces", "function f() { return {a: 1}; }")
    assert "use {curly} braces" in prompt and "{ return {a: 1}; }" in prompt


def test_answer_shown_is_the_part_after_the_last_think():
    assert P.answer_text("<think>plan</think>draft</think>  final answer ") == "final answer"
    assert P.answer_text(None) == ""


def test_question_field_fallbacks():
    assert P.question_text({"question": "q", "prompt": "p"}) == "q"
    assert P.question_text({"original_question": "o", "question": "q"}) == "o"
    assert P.question_text({"prompt": "p"}) == "p"


@pytest.mark.parametrize(
    ("reply", "score", "raw"),
    [
        ('```json\n{\n  "Overall Score": "35"\n}\n``` Reason: ok', 35.0, "35"),
        ('{"Overall Score": 72}', 72.0, "72"),
        ('{"Overall Score": "85.5"}', 85.5, "85.5"),
        # The regex tries the plain number first, so a range yields its first number, as in the original.
        ('{"Overall Score": "30-40"}', 30.0, "30"),
        ('first {"Overall Score": "10"} then {"Overall Score": "90"}', 90.0, "90"),
        ('{"总体打分": "92"}', 92.0, "92"),
        ('{"Overall Score": "55"} and {"总体打分": "92"}', 55.0, "55"),
    ],
)
def test_score_parsing_matches_the_original(reply, score, raw):
    assert P.parse_score(reply) == (score, raw)


@pytest.mark.parametrize(
    "reply", ['{"Other Field": "100"}', "Overall Score: 80", '{"overall score": "80"}', ""]
)
def test_replies_without_the_key_are_unparseable(reply):
    assert P.parse_score(reply) is None


def test_reply_thinking_is_stripped_before_parsing():
    reply = '<think>maybe {"Overall Score": "99"}</think>\n{"Overall Score": "40"}\nReason: dull'
    assert P.parse_score(P.strip_reply(reply)) == (40.0, "40")
    assert P.reason_text(P.strip_reply(reply)) == "dull"
