"""`proctor run FILE` reads FILE and what it references; `proctor validate` refuses what run refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proctor.inputs import InputError
from proctor.local import resolve

TASK = {"function_signature": "def solution(): pass", "test_script": "check(solution)"}


def evalrun(answers: dict | None = None, tasks: str = "tasks.jsonl") -> dict:
    spec = {"benchmark": {"format": "humanevalv", "source": {"file": {"path": tasks}}}}
    if answers:
        spec["answers"] = answers
    return {"apiVersion": "proctor.dev/v1alpha1", "kind": "EvalRun", "metadata": {"name": "r"}, "spec": spec}


def write(folder: Path, name: str, *docs: dict) -> Path:
    (folder / name).write_text(yaml.safe_dump_all(docs))
    return folder / name


def jsonl(*rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "tasks.jsonl").write_text(jsonl({"qid": "a", **TASK}, {"qid": "b", **TASK}))
    # neighbours that used to fail the run: a broken draft and a HumanEval-V predictions file (JSON list)
    (tmp_path / "draft.yaml").write_text("spec: [unclosed\n")
    (tmp_path / "predictions.json").write_text(json.dumps([{"qid": "a", "predictions": ["x"]}]))
    return tmp_path


def validate_cli(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "validate", *map(str, paths)], capture_output=True, text=True
    )


INLINE = {"format": "humanevalv", "source": {"inline": [{"qid": "a", "predictions": ["x"]}]}}


def test_broken_and_foreign_neighbours_do_not_matter(folder):
    path = write(folder, "run.yaml", evalrun(INLINE))
    assert len(resolve(path).items) == 2
    proc = validate_cli(path)
    assert proc.returncode == 0, proc.stderr
    assert "ok  " in proc.stdout and "(2 items)" in proc.stdout


def test_a_referenced_artifact_next_to_the_file_is_still_found(folder):
    artifact = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "Artifact",
        "metadata": {"name": "answers"},
        "spec": {"type": "answers", "format": "humanevalv", "source": {"file": {"path": "answers.jsonl"}}},
    }
    (folder / "answers.jsonl").write_text(jsonl({"qid": "a", "predictions": ["x"]}))
    write(folder, "inputs.yaml", artifact)
    path = write(folder, "run.yaml", evalrun({"artifactRef": {"name": "answers"}}))
    assert len(resolve(path).items) == 2


def test_a_missing_artifact_names_the_neighbours_it_could_not_read(folder):
    (folder / "other.yaml").write_text("kind: Artifact\nmetadata: {name: answers\n")
    path = write(folder, "run.yaml", evalrun({"artifactRef": {"name": "answers"}}))
    with pytest.raises(
        InputError, match=r"Artifact 'answers' not found in .*run\.yaml or next to it"
    ) as info:
        resolve(path)
    assert "skipped" in str(info.value) and "other.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ("missing.jsonl", "no such file"),
        ("broken.jsonl", "line 2: not valid JSON"),
        ("empty.jsonl", "no records"),
        ("dup.jsonl", "line 2: field 'qid': duplicate qid 'a' (line 1 has it too)"),
    ],
)
def test_validate_refuses_what_run_refuses(folder, tasks, expected):
    (folder / "broken.jsonl").write_text(jsonl({"qid": "a", **TASK}) + "{oops\n")
    (folder / "empty.jsonl").write_text("")
    (folder / "dup.jsonl").write_text(jsonl({"qid": "a", **TASK}, {"qid": "a", **TASK}))
    path = write(folder, "run.yaml", evalrun(INLINE, tasks=tasks))
    proc = validate_cli(path)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    run = subprocess.run(
        [sys.executable, "-m", "proctor", "run", str(path), "--store", str(folder / "s")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and expected in run.stderr


def test_validate_refuses_a_duplicate_answer_id(folder):
    answers = {
        "format": "humanevalv",
        "source": {"inline": [{"qid": q, "predictions": ["x"]} for q in "aba"]},
    }
    proc = validate_cli(write(folder, "run.yaml", evalrun(answers)))
    assert proc.returncode == 2 and "record 3: field 'qid': duplicate qid 'a'" in proc.stderr
