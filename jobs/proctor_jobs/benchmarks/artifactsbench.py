"""ArtifactsBench: web artifacts and games rendered in a browser and judged from screenshots.

Tasks use the benchmark's own schema (`index`, `question`, `checklist` — ten `{id, title,
description, maxScore}` items —, `class` = "<Domain>-<Subtype>", `difficulty`). Answers are
`{index, question?, answer}` records, as the original README describes; as the original's
`get_answer` does, the answer is the first non-empty of `model_infer_result`, `output`, `answer`.
Several answers for one index are samples of that task when every index has that many; an index on
more rows than most is a duplicate, refused naming both lines.

Stages: `render` (extract the page, render it in the hermetic farm, keep the screenshots) then
`judge` (checklist + screenshots to a multimodal judge; skipped with a notice when no judge is
configured). Item ids are the task index (`"57"`), or `"57/0"`, `"57/1"`… with several samples.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from proctor_jobs.benchmarks.base import FormatError, carry_unreadable, refuse_repeats
from proctor_jobs.benchmarks.render_judge import RenderThenJudge

#: the original's order (`get_answer`: model_infer_result or output or answer)
ANSWER_FIELDS = ("model_infer_result", "output", "answer")
#: the published leaderboard's domain columns (class prefixes)
DOMAIN_COLUMNS = {
    "Game Development": "GAME",
    "SVG Generation": "SVG",
    "Web Applications": "WEB",
    "Simulation & Modeling": "SI",
    "Management Systems": "MS",
}


def _index(row: dict, i: int, source: str) -> int:
    if "index" not in row:
        raise FormatError(i, "index", "missing", source)
    value = row["index"]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FormatError(i, "index", f"expected an integer, got {type(value).__name__}", source)
    try:
        return int(value)
    except ValueError:
        raise FormatError(i, "index", f"expected an integer, got {value!r}", source) from None


def domain_of(task_class: str) -> str:
    return (task_class or "").split("-", 1)[0].strip() or "Uncategorised"


class ArtifactsBench(RenderThenJudge):
    name = "artifactsbench"
    render_config = "proctor_jobs.render.artifacts:render_config"
    renderer = "proctor_jobs.render.artifacts:ArtifactRenderer"
    judge = "proctor_jobs.judge.artifactsbench:ArtifactsBenchJudge"
    scoring = "proctor_jobs.scoring.artifactsbench"
    render_description = "extract the page, render it, take screenshots"
    judge_description = "checklist and screenshots to the judge"
    title = "ArtifactsBench"
    answer_field = "answer"

    def parse_tasks(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = []
        seen: dict[int, int] = {}
        for i, row in enumerate(records):
            if not isinstance(row, dict):
                raise FormatError(i, "<record>", f"expected an object, got {type(row).__name__}", source)
            index = _index(row, i, source)
            if index in seen:
                raise FormatError(i, "index", f"duplicate index {index}", source, first=seen[index])
            seen[index] = i
            question = row.get("question")
            if not isinstance(question, str) or not question.strip():
                raise FormatError(i, "question", "missing or not a non-empty string", source)
            checklist = row.get("checklist")
            if isinstance(checklist, list):
                for j, entry in enumerate(checklist):
                    if not isinstance(entry, dict | str):
                        raise FormatError(i, f"checklist[{j}]", "expected an object or a string", source)
            elif not isinstance(checklist, str):
                raise FormatError(i, "checklist", "missing, or not a list of checklist items", source)
            task_class = row.get("class", "")
            if not isinstance(task_class, str):
                raise FormatError(i, "class", "expected a string such as 'Game Development-Puzzle'", source)
            difficulty = row.get("difficulty", "")
            if not isinstance(difficulty, str):
                raise FormatError(i, "difficulty", "expected a string (easy, medium, hard)", source)
            tasks.append(
                {
                    "index": index,
                    "question": question,
                    "checklist": checklist,
                    "class": task_class,
                    "difficulty": difficulty,
                }
            )
        return tasks

    def parse_answers(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        answers = []
        for i, row in enumerate(records):
            if not isinstance(row, dict):
                raise FormatError(i, "<record>", f"expected an object, got {type(row).__name__}", source)
            index = _index(row, i, source)
            present = [f for f in ANSWER_FIELDS if f in row]
            if not present:
                raise FormatError(i, "answer", "missing (also looked for model_infer_result, output)", source)
            # The original's get_answer: the first *non-empty* of model_infer_result, output, answer.
            field = next((f for f in present if row[f]), present[0])
            if not isinstance(row[field], str):
                raise FormatError(i, field, f"expected a string, got {type(row[field]).__name__}", source)
            answer = carry_unreadable(row, {"index": index, "answer": row[field]})
            if isinstance(row.get("question"), str):
                answer["question"] = row["question"]
            answers.append(answer)
        refuse_repeats([a["index"] for a in answers], "index", "index", source)
        return answers

    def categories(self, tasks: list[dict[str, Any]]) -> dict[str, int]:
        return dict(Counter(domain_of(t.get("class", "")) for t in tasks))

    def work_items(self, tasks, answers, spec):
        warnings: list[str] = []
        if answers is None:
            samples = int((spec.get("candidate") or {}).get("samples", 0))
            if not samples:
                raise ValueError("ArtifactsBench needs spec.answers or a candidate model (spec.candidate)")
            by_index = {t["index"]: [{"answer": ""}] * samples for t in tasks}
        else:
            by_index = defaultdict(list)
            for answer in answers:
                by_index[answer["index"]].append(answer)
            known = {t["index"] for t in tasks}
            for index in sorted(set(by_index) - known):
                warnings.append(f"answers for index {index} match no task and are ignored")
        n = max((len(v) for v in by_index.values()), default=1) or 1
        items = []
        for task in tasks:
            given = by_index.get(task["index"], [])
            if answers is not None and len(given) != n:
                warnings.append(
                    f"index {task['index']} has {len(given)} answer(s), others {n}; "
                    "a missing answer is rendered as nothing and judged as such"
                )
            for j in range(n):
                item_id = str(task["index"]) if n == 1 else f"{task['index']}/{j}"
                item = {
                    "id": item_id,
                    "index": task["index"],
                    "question": task["question"],
                    "checklist": task["checklist"],
                    "class": task["class"],
                    "difficulty": task["difficulty"],
                    "answer": given[j]["answer"] if j < len(given) else "",
                }
                if j < len(given):
                    carry_unreadable(given[j], item)
                if n > 1:
                    item["sample"] = j
                if answers is not None and j >= len(given):
                    item["missing"] = True
                items.append(item)
        return items, warnings
