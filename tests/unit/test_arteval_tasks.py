"""ArtEvalBench task import: the original's fields and rules, every problem named by record and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proctor_jobs.arteval.pack import main as pack_main
from proctor_jobs.arteval.tasks import DEFAULT_IMAGE, DEFAULT_TIMEOUT_S, parse_task_list
from proctor_jobs.benchmarks import FormatError, get_benchmark

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "artevalbench"


def records(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def task(**overrides) -> dict:
    base = {
        "artifact_id": "a1",
        "artifact_dir": "a1",
        "artifact_readme": "a1/README.md",
        "evaluator": "a1/_agent_eval/main.py",
        "expected_score": 4,
        "env": "local",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def only(result) -> dict:
    assert not result.errors, [str(e) for e in result.errors]
    assert len(result.tasks) == 1
    return result.tasks[0]


def test_the_fork_task_list_imports_with_paths_relative_to_each_artifact():
    result = parse_task_list(records("fork_arteval_tasks.jsonl"))
    assert not result.errors
    by_id = {t["artifact_id"]: t for t in result.tasks}
    assert set(by_id) == {
        "sosp24_wasabi",
        "osdi24_anvil",
        "sosp23_acto",
        "eurosys25_egwalker",
        "eurosys25_depsurf",
        "osdi24_eet",
    }
    wasabi = by_id["sosp24_wasabi"]
    # "sosp24_wasabi/wasabi/_agent_eval/main.py" is relative to the list; Proctor runs it from the root.
    assert wasabi["evaluator"] == {"kind": "python", "path": "wasabi/_agent_eval/main.py"}
    assert wasabi["readme"] == "wasabi/README.md"
    assert by_id["osdi24_anvil"]["evaluator"]["path"] == "_agent_eval/main.py"
    assert all(t["env"] == "bastoica/ae-agent-ubuntu24.04:latest" for t in result.tasks)
    assert all(t["timeout_s"] == DEFAULT_TIMEOUT_S for t in result.tasks)  # 96 h, the original's default
    # The list names folders of the original repository, not files Proctor has: that is said per task.
    assert all(any("artifact_archive" in n for n in t["notes"]) for t in result.tasks)


def test_the_smoke_list_reads_timeout_120000_as_milliseconds_and_shell_evaluators_as_commands():
    result = parse_task_list(records("fork_ae_agent_smoke_test.jsonl"))
    host, docker = result.tasks
    assert host["env"] == "local" and host["timeout_s"] == DEFAULT_TIMEOUT_S
    assert docker["timeout_s"] == 120.0 and docker["timeout_source"] == "timeout"
    assert host["evaluator"] == {"kind": "shell", "command": "python3 _agent_eval/check.py"}
    assert host["expected_score"] == 1
    assert host["readme"] == "README.md"


def test_the_upstream_list_with_its_docer_env_misspelling_is_accepted_and_noted():
    result = parse_task_list(records("upstream_arteval_tasks.jsonl"))
    wasabi = only(result)
    assert wasabi["env"] == "bastoica/ae-agent-ubuntu24.04:latest"
    assert any(n.field == "docer_env" and "misspelling" in n.message for n in result.notes)


@pytest.mark.parametrize(
    ("fields", "seconds", "source"),
    [
        ({"timeout": 7200}, 7200.0, "timeout"),  # below 86,400: seconds
        ({"timeout": 86399}, 86399.0, "timeout"),
        ({"timeout": 86400}, 86.4, "timeout"),  # from 86,400 on: milliseconds
        ({"timeout": 345_600_000}, 345_600.0, "timeout"),
        ({"timeout_sec": 90}, 90.0, "timeout_sec"),
        ({"timeout_ms": 90_000}, 90.0, "timeout_ms"),
        ({"timeout_sec": 90, "timeout_ms": 90_000, "timeout": 90}, 90.0, "timeout_sec"),  # agreeing
        ({}, float(DEFAULT_TIMEOUT_S), "default"),
    ],
)
def test_timeouts_follow_the_original_units_and_precedence(fields, seconds, source):
    parsed = only(parse_task_list([task(**fields)]))
    assert (parsed["timeout_s"], parsed["timeout_source"]) == (seconds, source)


def test_contradictory_timeouts_are_an_error_naming_the_values():
    result = parse_task_list([task(timeout_sec=60, timeout_ms=120_000)])
    (error,) = result.errors
    assert error.field == "timeout" and "60 s" in error.message and "120 s" in error.message


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"env": "img/a:1", "docker_env": "img/b:2"}, "env", "contradictory"),
        ({"env": "local", "docker_env": "img/b:2"}, "env", "names an image"),
        ({"env": "img/a:1", "run_on_host": True}, "run_on_host", "img/a:1"),
        ({"env": "local", "run_on_host": "false"}, "run_on_host", "env is 'local'"),
        ({"env": None, "docker_env": "local"}, "docker_env", "env: local"),
    ],
)
def test_contradictory_environments_are_errors(fields, field, words):
    result = parse_task_list([task(**fields)])
    assert any(e.field == field and words in e.message for e in result.errors), [
        str(e) for e in result.errors
    ]
    assert not result.tasks


def test_legacy_environment_spellings_resolve_like_the_original():
    assert only(parse_task_list([task(env=None, docker_env="img/x:1")]))["env"] == "img/x:1"
    assert only(parse_task_list([task(env=None, run_on_host=True)]))["env"] == "local"
    assert only(parse_task_list([task(env=None, run_on_host="yes")]))["env"] == "local"
    assert only(parse_task_list([task(env="img/x:1", docker_env="img/x:1")]))["env"] == "img/x:1"
    result = parse_task_list([task(env=None)])
    assert only(result)["env"] == DEFAULT_IMAGE
    assert any(n.field == "env" for n in result.notes)


def test_unknown_fields_are_errors_with_a_suggestion():
    result = parse_task_list([task(timout=600, colour="blue")])
    messages = {e.field: e.message for e in result.errors}
    assert messages["timout"] == "unknown field (did you mean 'timeout'?)"
    assert messages["colour"] == "unknown field"


def test_every_problem_of_every_record_is_reported_at_once():
    bad = [
        task(artifact_id="ok"),
        task(artifact_id="b", expected_score=5),
        {"artifact_id": "c", "artifact_dir": "c", "gpu": "sometimes"},
        task(artifact_id="ok"),
        "not an object",
    ]
    result = parse_task_list(bad)
    where = {(e.record, e.field) for e in result.errors}
    assert (1, "expected_score") in where
    assert {(2, "artifact_readme"), (2, "evaluator"), (2, "expected_score"), (2, "gpu")} <= where
    assert (3, "artifact_id") in where  # the duplicate
    assert (4, "<record>") in where
    with pytest.raises(FormatError) as info:
        get_benchmark("artevalbench").parse_tasks(bad, "tasks.jsonl")
    text = str(info.value)
    assert text.startswith("tasks.jsonl: record 2 (b): field 'expected_score'")  # 1-based
    for line in (
        "record 3 (c): field 'gpu'",
        "record 4 (ok): field 'artifact_id': duplicate (record 1 has it too)",
        "record 5",
    ):
        assert line in text


def test_paths_must_stay_inside_the_benchmark_folder():
    result = parse_task_list([task(artifact_readme="../../etc/passwd", evaluator="/abs/main.py")])
    assert {e.field for e in result.errors} == {"artifact_readme", "evaluator"}


def test_flags_are_read_like_the_original_and_interactive_is_noted():
    result = parse_task_list([task(gpu="true", keep_container=1, interactive=True)])
    parsed = only(result)
    assert parsed["gpu"] is True and parsed["keep_container"] is True and parsed["interactive"] is True
    assert any(n.field == "interactive" and "ignored" in n.message for n in result.notes)


def test_an_evaluator_outside_agent_eval_is_flagged_because_the_agent_could_change_it():
    result = parse_task_list([task(evaluator="a1/check.py")])
    assert only(result)["evaluator"] == {"kind": "python", "path": "check.py"}
    assert any(n.field == "evaluator" and "can read and change it" in n.message for n in result.notes)


def test_the_pack_tool_reports_problems_with_line_numbers(tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(task()) + "\n\n" + json.dumps(task(artifact_id="b", timout=5)) + "\n{oops\n")
    assert pack_main([str(tasks), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{tasks}:3 (b): field 'timout': unknown field (did you mean 'timeout'?)" in err
    assert f"{tasks}:4: not valid JSON" in err


def test_the_pack_tool_attaches_each_artifact_folder(tmp_path):
    root = tmp_path / "bench"
    (root / "a1" / "_agent_eval").mkdir(parents=True)
    (root / "a1" / "README.md").write_text("# a1\n")
    (root / "a1" / "_agent_eval" / "main.py").write_text("print(4)\n")
    tasks = root / "tasks.jsonl"
    tasks.write_text(json.dumps(task()) + "\n")
    out = tmp_path / "packed.jsonl"
    assert pack_main([str(tasks), "--out", str(out)]) == 0
    packed = [json.loads(line) for line in out.read_text().splitlines()]
    parsed = only(parse_task_list(packed))
    assert parsed["archive"]["sha256"]
    assert not any("artifact_archive" in n for n in parsed["notes"])
    # Into a store instead: a content-addressed key, referenced from the task.
    assert pack_main([str(tasks), "--out", str(out), "--store", str(tmp_path / "store")]) == 0
    ref = json.loads(out.read_text())["artifact_archive"]
    assert ref["uri"] == f"store:artifacts/{ref['sha256']}/artifact.tar.gz"
    assert (tmp_path / "store" / "artifacts" / ref["sha256"] / "artifact.tar.gz").is_file()
