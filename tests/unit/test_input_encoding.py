"""Non-UTF-8 input is named by file, line and byte offset; an unreadable answer fails alone."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from proctor.inputs import InputError, parse_records, read_local_records, validate_bundle
from proctor.manifests import ManifestError, load_documents
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.benchmarks.base import UNREADABLE
from proctor_jobs.encoding import UTF8_HINT
from proctor_jobs.worker import _process_one

TASK = {"function_signature": "def solution(): pass", "test_script": "check(solution)"}


def test_a_latin1_manifest_names_file_line_and_byte_offset(tmp_path):
    path = tmp_path / "run.yaml"
    raw = b"apiVersion: proctor.dev/v1alpha1\nkind: EvalRun\nmetadata: {name: caf\xe9}\n"
    path.write_bytes(raw)
    with pytest.raises(ManifestError) as info:
        load_documents(path)
    offset = raw.index(b"\xe9")
    assert offset == 67
    assert str(info.value).startswith(f"{path}: line 3: byte 0xe9 at byte offset 67 is not UTF-8")
    proc = subprocess.run(
        [sys.executable, "-m", "proctor", "run", str(path), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "line 3" in proc.stderr and "byte offset 67" in proc.stderr


def test_a_lone_surrogate_in_a_manifest_names_the_field(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text('kind: EvalRun\nmetadata: {name: "x\\ud800"}\n')
    with pytest.raises(ManifestError, match=r"run\.yaml: metadata\.name: a lone surrogate"):
        load_documents(path)


def test_tasks_that_are_not_utf8_are_refused_with_line_and_offset(tmp_path):
    path = tmp_path / "tasks.jsonl"
    raw = json.dumps({"qid": "a", **TASK}).encode() + b"\n" + json.dumps({"qid": "b", **TASK}).encode()
    offset = raw.index(b'"b"') + 1
    path.write_bytes(raw.replace(b'"b"', b'"\xff"') + b"\n")
    records = read_local_records(path)
    with pytest.raises(InputError) as info:
        validate_bundle("tasks", "humanevalv", records, str(path))
    assert f"{path}: line 2: byte 0xff at byte offset {offset} is not UTF-8" in str(info.value)
    assert "iconv" in str(info.value)


def test_a_json_array_that_is_not_utf8_is_refused_with_line_and_offset():
    with pytest.raises(InputError, match=r"^a\.json: line 2: byte 0xe9 at byte offset 9 is not UTF-8"):
        parse_records(b'[\n{"x": "\xe9"}]', "a.json")  # [ \n { " x " : space " = 9 bytes before it


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('{"qid": "b", "predictions": ["caf\xe9"]}'.encode("latin-1"), "byte 0xe9 at byte offset"),
        (b'{"qid": "b", "predictions": ["\xff"]}', "byte 0xff at byte offset"),
        (b'{"qid": "b", "predictions": ["x\\ud800"]}', "lone surrogate \\ud800 at byte offset"),
        (
            '{"qid": "b", "predictions": ["x\ud800"]}'.encode("utf-8", "surrogatepass"),
            "lone surrogate U+D800",
        ),
    ],
)
def test_an_unreadable_answer_fails_alone_with_its_reason(bad_line, reason):
    text = json.dumps({"qid": "a", "predictions": ["ok"]}).encode() + b"\n" + bad_line + b"\n"
    records = parse_records(text, "answers.jsonl")
    bundle = validate_bundle("answers", "humanevalv", records, "answers.jsonl")
    assert bundle.warnings and "1 answer record(s) are not UTF-8" in bundle.warnings[0]
    # the bundle can be stored as UTF-8 (lone surrogates replaced) ...
    json.dumps(bundle.records, ensure_ascii=False).encode()
    bench = get_benchmark("humanevalv")
    tasks = [{"qid": q, **TASK} for q in "ab"]
    items, _ = bench.work_items(bench.parse_tasks(tasks), bundle.records, {})
    assert UNREADABLE not in items[0]
    assert items[1][UNREADABLE].startswith("answers.jsonl: line 2: " + reason)

    # ... and the worker fails that item with the reason, without running it
    class Never:
        item_deadline_s = None

        async def process(self, item, up, ctx):
            raise AssertionError("an unreadable answer must not be processed")

    class Ctx:
        manifest = type("M", (), {"stage": "oracle", "upstream": None})()

    record = asyncio.run(_process_one(Never(), items[1], None, Ctx()))
    assert record.status == "failed" and record.reason.startswith("unreadable answer: answers.jsonl: line 2")


@pytest.mark.parametrize("fmt", ["artifactsbench", "vision2code"])
def test_render_benchmarks_carry_the_reason_to_the_item(fmt):
    key = {"artifactsbench": "index", "vision2code": "question_folder"}[fmt]
    value = {"artifactsbench": 1, "vision2code": "t1"}[fmt]
    text = json.dumps({key: value, "answer": "x"}).encode().replace(b'"x"', b'"\xff"')
    bundle = validate_bundle("answers", fmt, parse_records(text + b"\n", "a.jsonl"), "a.jsonl")
    bench = get_benchmark(fmt)
    if fmt == "artifactsbench":
        tasks = bench.parse_tasks([{"index": 1, "question": "q", "checklist": "c"}])
    else:
        tasks = bench.parse_tasks(
            [{"question_folder": "t1", "source_dataset": "d", "reference_key": "k", "reference_size": [1, 1]}]
        )
    [item], _ = bench.work_items(tasks, bundle.records, {})
    assert item[UNREADABLE].startswith("a.jsonl: line 1: byte 0xff at byte offset")


def test_a_configmap_with_binary_data_is_read_as_bytes(tmp_path):
    import base64

    from proctor.local import LocalResolver
    from proctor.manifests import Document

    cm = {
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "binaryData": {"a.jsonl": base64.b64encode(b'{"qid": "a", "predictions": ["\xff"]}\n').decode()},
    }
    resolver = LocalResolver([Document(cm, "x.yaml")], tmp_path)
    records = parse_records(resolver.config_map("cm", "a.jsonl"), "cm")
    assert records.unreadable == {0: "cm: line 1: byte 0xff at byte offset 30 is not UTF-8"}


def test_the_arteval_task_list_packer_names_a_non_utf8_line(tmp_path):
    from proctor_jobs.arteval.pack import read_lines

    path = tmp_path / "tasks.jsonl"
    raw = b'{"artifact_id": "a"}\n{"artifact_id": "caf\xe9"}\n'
    path.write_bytes(raw)
    records, lines, errors = read_lines(path)
    assert records == [{"artifact_id": "a"}] and lines == [1]
    assert errors == [f"{path}:2: byte 0xe9 at byte offset {raw.index(0xE9)} is not UTF-8; {UTF8_HINT}"]
