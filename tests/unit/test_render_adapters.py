"""The ArtifactsBench and Vision2Code adapters: formats, items, stages and the judge contract."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from proctor_jobs.benchmarks import FormatError, get_benchmark
from proctor_jobs.benchmarks.render_judge import NO_JUDGE

REPO = Path(__file__).resolve().parents[2]
AB_TASKS = REPO / "tests/fixtures/artifactsbench/tasks.jsonl"


def ab_tasks() -> list[dict]:
    return [json.loads(line) for line in AB_TASKS.read_text().splitlines() if line.strip()]


def test_artifactsbench_reads_the_real_task_schema():
    bench = get_benchmark("artifactsbench")
    tasks = bench.parse_tasks(ab_tasks(), "tasks.jsonl")
    assert {"index", "question", "checklist", "class", "difficulty"} <= set(tasks[0])
    assert len(tasks[0]["checklist"]) == 10
    assert sum(bench.categories(tasks).values()) == len(tasks)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"index": "seven"}, "index"),
        ({"question": ""}, "question"),
        ({"checklist": 5}, "checklist"),
        ({"class": 3}, "class"),
    ],
)
def test_artifactsbench_task_errors_name_the_record_and_field(change, field):
    rows = ab_tasks()[:2]
    rows[1] = {**rows[1], **change}
    with pytest.raises(FormatError) as info:
        get_benchmark("artifactsbench").parse_tasks(rows, "tasks.jsonl")
    assert (info.value.record, info.value.field) == (1, field)
    assert "tasks.jsonl" in str(info.value)


def test_artifactsbench_answers_accept_the_original_field_names():
    bench = get_benchmark("artifactsbench")
    answers = bench.parse_answers(
        [
            {"index": 1, "answer": "a"},
            {"index": "2", "model_infer_result": "b"},
            {"index": 3, "output": "c", "question": "q"},
        ]
    )
    assert [(a["index"], a["answer"]) for a in answers] == [(1, "a"), (2, "b"), (3, "c")]
    with pytest.raises(FormatError, match=r"answers\.jsonl: record 1: field 'answer'"):
        bench.parse_answers([{"index": 1}], "answers.jsonl")
    with pytest.raises(FormatError, match="field 'answer': expected a string"):
        bench.parse_answers([{"index": 1, "answer": ["x"]}])


def test_artifactsbench_items_carry_the_judge_payload_and_flag_missing_answers():
    bench = get_benchmark("artifactsbench")
    tasks = bench.parse_tasks(ab_tasks()[:3])
    answers = bench.parse_answers(
        [
            {"index": tasks[0]["index"], "answer": "x"},
            {"index": tasks[1]["index"], "answer": "y"},
            {"index": 999999, "answer": "z"},
        ]
    )
    items, warnings = bench.work_items(tasks, answers, {})
    assert [i["id"] for i in items] == [str(t["index"]) for t in tasks]
    assert set(items[0]) >= {"id", "index", "question", "checklist", "class", "difficulty", "answer"}
    assert items[2]["missing"] and items[2]["answer"] == ""
    assert any("999999" in w for w in warnings) and any(str(tasks[2]["index"]) in w for w in warnings)


def test_artifactsbench_candidate_runs_make_one_item_per_sample():
    bench = get_benchmark("artifactsbench")
    tasks = bench.parse_tasks(ab_tasks()[:2])
    items, _ = bench.work_items(tasks, None, {"candidate": {"model": "m", "samples": 3}})
    assert len(items) == 6 and items[1]["id"] == f"{tasks[0]['index']}/1" and items[1]["answer"] == ""


def test_stages_render_then_judge_skipped_without_a_judge():
    for name in ("artifactsbench", "vision2code"):
        bench = get_benchmark(name)
        render, judge = bench.stages({})
        assert (render.name, render.kind, judge.name, judge.kind) == ("render", "render", "judge", "judge")
        assert judge.needs_judge and judge.skip_reason == NO_JUDGE
        assert bench.stages({"judge": {"url": "http://127.0.0.1:1/v1"}})[1].skip_reason is None
        assert bench.stages({"judge": {"serverRef": {"name": "j"}}})[1].skip_reason is None


def test_render_stage_config_follows_spec_render():
    config = get_benchmark("artifactsbench").stage_config(
        "render",
        {
            "render": {
                "profile": "faithful",
                "screenshots": 5,
                "intervalSeconds": 0.5,
                "viewport": {"width": 800, "height": 600},
                "maxPageHeight": 3000,
                "interaction": [{"action": "scroll", "deltaY": 400}],
            }
        },
    )
    assert (config["profile"], config["screenshots"], config["interval_s"]) == ("faithful", 5, 0.5)
    assert config["viewport"] == {"width": 800, "height": 600} and config["max_page_height"] == 3000
    assert config["interaction"] == [{"action": "scroll", "delta_y": 400}]
    assert config["libcache"]  # a new library cache re-renders: it is part of the config hash


def b64png(size=(64, 48)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def v2c_row(**extra) -> dict:
    return {
        "question_folder": "ChartQA_test_000001",
        "source_dataset": "ChartQA",
        "category": "Charts&Plots",
        "question": "q?",
        "reference_image": b64png(),
        "source_record_id": "default__test.jsonl:1",
        **extra,
    }


def test_vision2code_reads_manifest_rows_with_inline_images_and_renderers():
    bench = get_benchmark("vision2code")
    tasks = bench.parse_tasks(
        [
            v2c_row(),
            v2c_row(question_folder="doc_1", task="latex_docvqa"),
            v2c_row(question_folder="x_1", renderer="excalidraw"),
        ]
    )
    assert [t["renderer"] for t in tasks] == ["matplotlib", "latex", "excalidraw"]
    assert tasks[0]["reference_size"] == [64, 48]
    answers = bench.parse_answers(
        [
            {"sample_id": "default__test.jsonl:1", "answer": "```python\nx\n```"},
            {"question_folder": "doc_1", "generated_code": "\\documentclass{article}"},
        ]
    )
    items, warnings = bench.work_items(tasks, answers, {})
    first = items[0]
    assert set(first) >= {
        "id",
        "sample_id",
        "source_dataset",
        "category",
        "reference_image",
        "reference_size",
        "answer",
        "renderer",
    }
    assert first["id"] == "ChartQA_test_000001" and first["answer"].startswith("```python")
    assert first["metadata"]["question"] == "q?" and "reference_image" not in first["metadata"]
    assert items[2]["missing"] and any("x_1" in w for w in warnings)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"source_dataset": ""}, "source_dataset", "missing"),
        ({"reference_image": "images/test/a.png"}, "reference_image", "not found next to the records"),
        ({"reference_image": "bm90IGFuIGltYWdl"}, "reference_image", "not a readable base64 image"),
        ({"renderer": "povray"}, "renderer", "unknown renderer"),
    ],
)
def test_vision2code_task_errors_name_the_record_and_field(row, field, message):
    with pytest.raises(FormatError) as info:
        get_benchmark("vision2code").parse_tasks(
            [v2c_row(question_folder="ok"), v2c_row(**row)], "manifest.jsonl"
        )
    assert (info.value.record, info.value.field) == (1, field)
    assert message in str(info.value)


def test_adapters_import_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, proctor_jobs.benchmarks.artifactsbench as a, proctor_jobs.benchmarks.vision2code as v\n"
        "a.ArtifactsBench().stage_config('render', {}); v.Vision2Code().stage_config('render', {})\n"
        "print(any(m.split('.')[0] in ('playwright', 'matplotlib') for m in sys.modules))"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
