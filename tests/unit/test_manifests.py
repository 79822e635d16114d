"""Manifest validation: refused before any work, with the field's path in the message, exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proctor.manifests import ManifestError, load_documents, validate

GOOD = {
    "apiVersion": "proctor.dev/v1alpha1",
    "kind": "EvalRun",
    "metadata": {"name": "demo"},
    "spec": {"benchmark": {"format": "humanevalv", "source": {"file": {"path": "tasks.jsonl"}}}},
}


def _write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _error(tmp_path: Path, body: dict) -> str:
    [doc] = load_documents(_write(tmp_path, body))
    with pytest.raises(ManifestError) as info:
        validate(doc)
    return str(info.value)


def _with(path: list, value) -> dict:
    body = json.loads(json.dumps(GOOD))
    node = body
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return body


def test_a_good_manifest_validates_with_defaults(tmp_path):
    [doc] = load_documents(_write(tmp_path, GOOD))
    run = validate(doc)
    assert run.spec.sharding.shard_size == 50
    assert run.spec.oracle.timeout_seconds == 2.0


def test_unknown_field_is_named(tmp_path):
    message = _error(tmp_path, _with(["spec", "sharding", "shardSise"], 10))
    assert "spec.sharding.shardSise: unknown field" in message
    assert "run.yaml: EvalRun/demo" in message


def test_wrong_type_is_named_with_the_value(tmp_path):
    message = _error(tmp_path, _with(["spec", "parallelism"], "lots"))
    assert "spec.parallelism:" in message and "'lots'" in message


def test_out_of_range_is_named(tmp_path):
    message = _error(tmp_path, _with(["spec", "sharding", "shardSize"], 0))
    assert "spec.sharding.shardSize:" in message and "greater than or equal to 1" in message


def test_missing_required_field_is_named(tmp_path):
    body = json.loads(json.dumps(GOOD))
    del body["spec"]["benchmark"]
    assert "spec.benchmark: required field is missing" in _error(tmp_path, body)


def test_exactly_one_source(tmp_path):
    body = _with(["spec", "benchmark", "source", "inline"], [{"qid": "q"}])
    assert "exactly one of s3, http, configMap, inline, file" in _error(tmp_path, body)


def test_wrong_kind_and_api_version(tmp_path):
    assert "kind: expected one of" in _error(tmp_path, {**GOOD, "kind": "EvalRunn"})
    assert "apiVersion:" in _error(tmp_path, {**GOOD, "apiVersion": "proctor.dev/v1"})


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: EvalRun\nspec: [unclosed\n")
    with pytest.raises(ManifestError, match=r"bad.yaml:\d+:\d+: not valid YAML"):
        load_documents(path)


@pytest.mark.parametrize(
    "mutation",
    [
        (["spec", "sharding", "shardSise"], 10),
        (["spec", "parallelism"], "lots"),
        (["spec", "render", "viewport", "width"], 10),
    ],
)
def test_cli_refuses_with_exit_status_2_before_any_work(tmp_path, mutation):
    path = _write(tmp_path, _with(*mutation))
    store = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, "-m", "proctor", "run", str(path), "--store", str(store)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert ".".join(str(p) for p in mutation[0]) in proc.stderr
    assert not store.exists() or not any(store.rglob("*.json"))


def test_cli_refuses_an_invalid_record_naming_record_and_field(tmp_path):
    (tmp_path / "tasks.jsonl").write_text(
        json.dumps({"qid": "q1", "function_signature": "def solution(): pass", "test_script": "x"})
        + "\n"
        + json.dumps({"qid": "q2", "function_signature": "def solution(): pass"})
        + "\n"
    )
    path = _write(tmp_path, GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "proctor", "run", str(path), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "tasks.jsonl" in proc.stderr and "line 2: field 'test_script': missing" in proc.stderr
