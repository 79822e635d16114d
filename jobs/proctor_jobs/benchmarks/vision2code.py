"""Vision2Code: recreate an image with code; the render is rated against the reference image.

Tasks are rows of the benchmark's manifest (`manifest.jsonl` / `manifest.csv`: `question_folder`,
`image_path`, `question`, `category`, `source_dataset`, `source_subset`, `source_record_id`,
`split`, `benchmark_split`, ...). The reference image comes inline: local mode turns an
`image_path` next to the records into base64; elsewhere give `reference_image` (base64 or a data
URL) or `reference_key` (a key in the run's store). A task may pick its renderer with `renderer`
(`matplotlib` — the default —, `latex`, `excalidraw`) or, as the tool-use ablation names them,
`task: latex_docvqa | excalidraw_json`.

Answers: `{question_folder | sample_id | id, answer}` — the model's raw reply (the code is taken out
of it as the harness does) — or the harness's own `generated_code`/`code` field.

Stages: `render` (sandboxed matplotlib/LaTeX, or Excalidraw in the browser) then `judge` (rubric
rating, reference then candidate image), skipped with a notice when no judge is configured.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter, defaultdict
from typing import Any

from proctor_jobs.benchmarks.base import FormatError, carry_unreadable, refuse_repeats
from proctor_jobs.benchmarks.render_judge import RenderThenJudge
from proctor_jobs.image_header import image_size

ID_FIELDS = ("question_folder", "id", "sample_id", "source_record_id")
ANSWER_ID_FIELDS = ("question_folder", "id", "sample_id", "source_record_id")
ANSWER_TEXT_FIELDS = ("answer", "generated_code", "code", "response", "raw_response", "output")
IMAGE_FIELDS = ("reference_image", "image", "image_path", "image_base64")
TASK_RENDERERS = {"latex_docvqa": "latex", "excalidraw_json": "excalidraw"}
RENDERERS = ("matplotlib", "latex", "excalidraw")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def _decode(value: str) -> bytes:
    if value.startswith("data:"):
        value = value.split(",", 1)[1]
    return base64.b64decode(value, validate=True)


class Vision2Code(RenderThenJudge):
    name = "vision2code"
    render_config = "proctor_jobs.render.vision2code:vision2code_render_config"
    renderer = "proctor_jobs.render.vision2code:Vision2CodeRenderer"
    judge = "proctor_jobs.judge.vision2code:Vision2CodeJudge"
    scoring = "proctor_jobs.scoring.vision2code"
    render_description = "run the program (sandbox or browser), check the image"
    judge_description = "rubric rating against the reference"
    title = "Vision2Code"
    answer_field = "answer"

    def parse_tasks(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for i, row in enumerate(records):
            if not isinstance(row, dict):
                raise FormatError(i, "<record>", f"expected an object, got {type(row).__name__}", source)
            id_field = next((f for f in ID_FIELDS if isinstance(row.get(f), str) and row[f].strip()), None)
            if id_field is None:
                raise FormatError(
                    i, "question_folder", "missing (or id / sample_id / source_record_id)", source
                )
            task_id = row[id_field].strip()
            if task_id in seen:
                raise FormatError(i, id_field, f"duplicate task {task_id!r}", source, first=seen[task_id])
            seen[task_id] = i
            dataset = row.get("source_dataset") or row.get("dataset")
            if not isinstance(dataset, str) or not dataset.strip():
                raise FormatError(
                    i, "source_dataset", "missing (the rubric is chosen per source dataset)", source
                )
            task = {k: v for k, v in row.items() if k not in IMAGE_FIELDS and k != "reference_key"}
            task["id"] = task_id
            task["source_dataset"] = dataset
            task.update(self._reference(row, i, source))
            renderer = row.get("renderer") or TASK_RENDERERS.get(str(row.get("task") or ""), "matplotlib")
            if renderer not in RENDERERS:
                raise FormatError(
                    i, "renderer", f"unknown renderer {renderer!r}; known: {', '.join(RENDERERS)}", source
                )
            task["renderer"] = renderer
            tasks.append(task)
        return tasks

    def _reference(self, row: dict[str, Any], i: int, source: str) -> dict[str, Any]:
        if isinstance(row.get("reference_key"), str) and row["reference_key"]:
            size = row.get("reference_size") or row.get("image_size")
            if not (
                isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
            ):
                raise FormatError(
                    i, "reference_size", "required with reference_key: [width, height] in pixels", source
                )
            return {"reference_key": row["reference_key"], "reference_size": list(size)}
        field = next((f for f in IMAGE_FIELDS if isinstance(row.get(f), str) and row[f]), None)
        if field is None:
            raise FormatError(
                i,
                "reference_image",
                "missing: the reference image (base64, a data URL, or an "
                "image_path next to the records in local mode)",
                source,
            )
        value = row[field]
        if value.lower().endswith(IMAGE_SUFFIXES) and len(value) < 1024:
            raise FormatError(
                i,
                field,
                f"image file {value!r} not found next to the records (local mode inlines "
                "image files it can find; elsewhere give reference_image as base64)",
                source,
            )
        try:
            data = _decode(value)
            width, height = image_size(data)  # the header only, as Pillow's open would read
        except (binascii.Error, ValueError, OSError) as exc:
            raise FormatError(i, field, f"not a readable base64 image: {exc}", source) from None
        return {"reference_image": base64.b64encode(data).decode(), "reference_size": [width, height]}

    def parse_answers(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        answers = []
        for i, row in enumerate(records):
            if not isinstance(row, dict):
                raise FormatError(i, "<record>", f"expected an object, got {type(row).__name__}", source)
            keys = {
                f: str(row[f]) for f in ANSWER_ID_FIELDS if isinstance(row.get(f), str | int) and str(row[f])
            }
            if not keys:
                raise FormatError(
                    i,
                    "question_folder",
                    "missing: which task this answers (question_folder, sample_id or id)",
                    source,
                )
            field = next((f for f in ANSWER_TEXT_FIELDS if f in row), None)
            if field is None:
                raise FormatError(
                    i, "answer", "missing (also looked for generated_code, code, response)", source
                )
            if not isinstance(row[field], str):
                raise FormatError(i, field, f"expected a string, got {type(row[field]).__name__}", source)
            answers.append(carry_unreadable(row, {"keys": keys, "answer": row[field]}))
        refuse_repeats([next(iter(a["keys"].values())) for a in answers], "question_folder", "task", source)
        return answers

    def categories(self, tasks: list[dict[str, Any]]) -> dict[str, int]:
        return dict(Counter(str(t.get("source_dataset")) for t in tasks))

    def work_items(self, tasks, answers, spec):
        warnings: list[str] = []
        lookup: dict[str, str] = {}
        for task in tasks:
            for f in ANSWER_ID_FIELDS:
                if task.get(f) not in (None, ""):
                    lookup.setdefault(str(task[f]), task["id"])
            lookup.setdefault(task["id"], task["id"])
        if answers is None:
            samples = int((spec.get("candidate") or {}).get("samples", 0))
            if not samples:
                raise ValueError("Vision2Code needs spec.answers or a candidate model (spec.candidate)")
            by_task = {t["id"]: [{"answer": ""}] * samples for t in tasks}
        else:
            by_task = defaultdict(list)
            for answer in answers:
                task_id = next((lookup[v] for v in answer["keys"].values() if v in lookup), None)
                if task_id is None:
                    warnings.append(
                        f"answer for {next(iter(answer['keys'].values()))!r} matches no task; ignored"
                    )
                    continue
                by_task[task_id].append(answer)
        n = max((len(v) for v in by_task.values()), default=1) or 1
        items = []
        for task in tasks:
            given = by_task.get(task["id"], [])
            if answers is not None and len(given) != n:
                warnings.append(
                    f"task {task['id']!r} has {len(given)} answer(s), others {n}; "
                    "a missing answer counts as a render failure"
                )
            metadata = {
                k: v
                for k, v in task.items()
                if k not in ("id", "reference_image", "reference_key", "reference_size", "renderer")
            }
            for j in range(n):
                item = {
                    "id": task["id"] if n == 1 else f"{task['id']}/{j}",
                    "sample_id": str(task.get("sample_id") or task.get("source_record_id") or task["id"]),
                    "question_folder": task.get("question_folder") or task["id"],
                    "source_dataset": task["source_dataset"],
                    "reference_size": task["reference_size"],
                    "renderer": task["renderer"],
                    "answer": given[j]["answer"] if j < len(given) else "",
                    "metadata": metadata,
                }
                if j < len(given):
                    carry_unreadable(given[j], item)
                for key in (
                    "category",
                    "question",
                    "split",
                    "benchmark_split",
                    "source_subset",
                    "benchmark_version",
                    "reference_image",
                    "reference_key",
                ):
                    if task.get(key) not in (None, ""):
                        item[key] = task[key]
                if n > 1:
                    item["sample"] = j
                if answers is not None and j >= len(given):
                    item["missing"] = True
                items.append(item)
        return items, warnings
