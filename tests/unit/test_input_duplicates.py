"""Duplicate answer and task ids are refused naming both 1-based lines, in every benchmark adapter."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proctor.inputs import InputError, parse_records, read_local_records, validate_bundle
from proctor_jobs.arteval.tasks import parse_task_list
from proctor_jobs.benchmarks import FormatError, get_benchmark


def jsonl(*rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def refused(kind: str, fmt: str, text: str) -> str:
    with pytest.raises(InputError) as info:
        validate_bundle(kind, fmt, parse_records(text, "f.jsonl"), "f.jsonl")
    return str(info.value)


HV_TASK = {"function_signature": "def solution(): pass", "test_script": "check(solution)"}


def test_humanevalv_answer_qid_twice_is_refused_with_both_lines():
    text = jsonl(
        {"qid": "a", "predictions": ["x", "y"]},
        {"qid": "b", "predictions": ["x", "y"]},
        {"qid": "a", "predictions": ["z", "w"]},
    )
    message = refused("answers", "humanevalv", text)
    assert "f.jsonl: line 3: field 'qid': duplicate qid 'a'" in message
    assert "line 1 has it too" in message


def test_humanevalv_the_same_row_twice_is_refused_even_when_every_qid_is_doubled():
    rows = [{"qid": "a", "predictions": ["x"]}, {"qid": "b", "predictions": ["y"]}]
    message = refused("answers", "humanevalv", jsonl(*rows, *rows))
    assert "line 3" in message and "line 1 has it too" in message


def test_humanevalv_split_predictions_still_merge_like_the_original():
    # aggregate_prediction_data: every qid on the same number of rows, each with part of its samples
    rows = [
        {"qid": "a", "predictions": ["a0"]},
        {"qid": "b", "predictions": ["b0"]},
        {"qid": "a", "predictions": ["a1"]},
        {"qid": "b", "predictions": ["b1"]},
    ]
    bundle = validate_bundle("answers", "humanevalv", parse_records(jsonl(*rows), "f"), "f")
    assert {a["qid"]: a["predictions"] for a in bundle.records} == {"a": ["a0", "a1"], "b": ["b0", "b1"]}


def test_humanevalv_duplicate_task_names_both_lines():
    message = refused("tasks", "humanevalv", jsonl({"qid": "a", **HV_TASK}, {"qid": "a", **HV_TASK}))
    assert "line 2: field 'qid': duplicate qid 'a' (line 1 has it too)" in message


def test_artifactsbench_duplicate_answer_and_task_index():
    answers = jsonl({"index": 1, "answer": "x"}, {"index": 2, "answer": "y"}, {"index": "1", "answer": "z"})
    message = refused("answers", "artifactsbench", answers)
    assert "line 3: field 'index': duplicate index 1" in message and "line 1 has it too" in message
    task = {"question": "q", "checklist": "c"}
    message = refused("tasks", "artifactsbench", jsonl({"index": 1, **task}, {"index": 1, **task}))
    assert "line 2: field 'index': duplicate index 1 (line 1 has it too)" in message


def test_artifactsbench_samples_are_not_duplicates():
    rows = [{"index": i, "answer": a} for a in "xy" for i in (1, 2)]
    bundle = validate_bundle("answers", "artifactsbench", parse_records(jsonl(*rows), "f"), "f")
    assert len(bundle.records) == 4


def test_vision2code_duplicate_answer_and_task():
    answers = jsonl(
        {"question_folder": "t1", "answer": "x"},
        {"question_folder": "t2", "answer": "x"},
        {"question_folder": "t2", "answer": "y"},
    )
    message = refused("answers", "vision2code", answers)
    assert "line 3: field 'question_folder': duplicate task 't2'" in message and "line 2 has it" in message
    with pytest.raises(FormatError, match=r"record 2: field 'question_folder': duplicate task 't'.*record 1"):
        task = {"question_folder": "t", "source_dataset": "d", "reference_key": "k", "reference_size": [1, 1]}
        get_benchmark("vision2code").parse_tasks([task, dict(task)])


def test_artevalbench_duplicate_artifact_names_both_records():
    task = {
        "artifact_id": "a",
        "artifact_dir": "a",
        "artifact_readme": "a/README.md",
        "evaluator": "a/_agent_eval/main.py",
        "expected_score": 4,
    }
    result = parse_task_list([task, dict(task)])
    assert [str(p) for p in result.errors if p.field == "artifact_id"] == [
        "record 2 (a): field 'artifact_id': duplicate (record 1 has it too)"
    ]


def test_errors_are_one_based_lines_for_json_lines_and_records_for_arrays(tmp_path):
    good = {"qid": "q1", **HV_TASK}
    (tmp_path / "t.jsonl").write_text(jsonl(good) + "\n" + jsonl({"qid": "q2"}))
    records = read_local_records(tmp_path / "t.jsonl")
    with pytest.raises(InputError, match=r"^t: line 3: field 'function_signature': missing"):
        validate_bundle("tasks", "humanevalv", records, "t")
    (tmp_path / "t.json").write_text(json.dumps([good, {"qid": "q2"}]))
    with pytest.raises(InputError, match=r"^t: record 2: field 'function_signature'"):
        validate_bundle("tasks", "humanevalv", read_local_records(tmp_path / "t.json"), "t")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.jsonl").write_text(jsonl(good, {"qid": "q1", **HV_TASK}))
    with pytest.raises(InputError, match=r"b\.jsonl line 2: field 'qid': duplicate .*b\.jsonl line 1"):
        validate_bundle("tasks", "humanevalv", read_local_records(tmp_path / "d"), "t")


def test_the_issues_case_one_qid_twice_in_the_example_is_refused_before_any_work(tmp_path):
    """One qid listed twice in answers.jsonl used to give exit 0, 144 items and pass@1 26.4."""
    data = Path(__file__).resolve().parents[2] / "examples" / "humanevalv" / "data"
    shutil.copy(data / "tasks.jsonl", tmp_path / "tasks.jsonl")
    rows = json.loads((data / "predictions_n6.json").read_text())
    (tmp_path / "answers.jsonl").write_text(jsonl(*rows, rows[4]))  # hv05 again, on line 13
    run = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "metadata": {"name": "dup"},
        "spec": {
            "benchmark": {"format": "humanevalv", "source": {"file": {"path": "tasks.jsonl"}}},
            "answers": {"format": "humanevalv", "source": {"file": {"path": "answers.jsonl"}}},
        },
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    for command in (["validate"], ["run", "--store", str(tmp_path / "store")]):
        proc = subprocess.run(
            [sys.executable, "-m", "proctor", command[0], str(tmp_path / "run.yaml"), *command[1:]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert (
            "answers.jsonl (spec.answers.source): line 13: field 'qid': duplicate qid 'hv05'" in proc.stderr
        )
        assert "(line 5 has it too)" in proc.stderr
    assert not (tmp_path / "store").exists()
