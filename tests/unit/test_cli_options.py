"""The command line: "did you mean" for unknown fields, invalid option values refused, --help everywhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

from proctor.cli import COMMANDS, build_parser
from proctor.manifests import Document, ManifestError, validate


def test_an_unknown_field_suggests_the_known_one_at_its_place():
    body = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "metadata": {"name": "x"},
        "spec": {
            "benchmark": {"format": "humanevalv", "source": {"inlin": []}},
            "sharding": {"shardSise": 3},
            "oracel": {},
            "nothingLikeIt": 1,
        },
    }
    with pytest.raises(ManifestError) as info:
        validate(Document(body, "f.yaml"))
    message = str(info.value)
    assert "spec.benchmark.source.inlin: unknown field (did you mean 'inline'?)" in message
    assert "spec.sharding.shardSise: unknown field (did you mean 'shardSize'?)" in message
    assert "spec.oracel: unknown field (did you mean 'oracle'?)" in message
    assert "spec.nothingLikeIt: unknown field\n" in message + "\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "x.yaml", "--shard-size", "0"],
        ["run", "x.yaml", "--workers", "-3"],
        ["run", "x.yaml", "--workers", "two"],
        ["compare", "a", "b", "--bootstrap", "-1"],
        ["judge", "serve", "--model", "m", "--port", "70000"],
        ["judge", "serve", "--model", "m", "--gpu-memory-utilization", "1.5"],
    ],
)
def test_invalid_option_values_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert "expected" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_working_help_with_a_description(command):
    proc = subprocess.run(
        [sys.executable, "-m", "proctor", command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    usage, _, rest = proc.stdout.partition("\n\n")
    assert usage.startswith(f"usage: proctor {command}")
    assert rest and not rest.startswith(("options:", "positional arguments:")), proc.stdout
    if command == "worker":
        assert "--stage" in proc.stdout and "--wait-upstream" in proc.stdout


def test_output_that_is_not_a_terminal_is_plain_lines_that_do_not_wrap(tmp_path):
    import json

    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "store"
    task = {"qid": "q", "function_signature": "def solution():\n    pass\n", "test_script": "solution()\n"}
    (tmp_path / "tasks.jsonl").write_text(json.dumps(task) + "\n")
    (tmp_path / "run.yaml").write_text(
        "apiVersion: proctor.dev/v1alpha1\nkind: EvalRun\nmetadata: {name: plain}\nspec:\n"
        "  benchmark: {format: humanevalv, source: {file: {path: tasks.jsonl}}}\n"
        "  answers: {format: humanevalv, source: {inline: [{qid: q, predictions: ['x']}]}}\n"
        "  oracle: {pylint: false}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "proctor", "run", str(tmp_path / "run.yaml"), "--store", str(deep)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("report: ")]
    assert line.endswith("/report.md") and str(deep) in line and len(line) > 120
