"""ArtEvalBench: can an agent reproduce a research artifact? Four oracle stages score each artifact 0-4.

Tasks come from the original's task list (see `proctor_jobs.arteval.tasks` for the fields and rules) with
the artifact's files attached as an archive. One stage, `oracle`, declared with one Job per artifact: each
artifact may need its own image, GPU and deadline, and runs for hours. Inside it the optional agent
phase and then the evaluator phase run in the same workspace (`proctor_jobs.arteval.pipeline`).

Scores: per artifact 0-4 with each oracle stage's pass/fail and a log excerpt; for the benchmark, the
share of artifacts reaching their `expected_score` (the original's `final_score`) and the mean score
(the partial credit the original's number hides).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from proctor_jobs.arteval.pipeline import ArtifactProcessor, job_deadline
from proctor_jobs.arteval.scoring import STAGES
from proctor_jobs.arteval.tasks import parse_task_list
from proctor_jobs.benchmarks.base import Benchmark, FormatError, Problem, StageInfo, StageProcessor
from proctor_jobs.records import ItemRecord

STAGE = "oracle"
DEFAULT_EVALUATOR_TIMEOUT_S = 3600.0
DEFAULT_AGENT_TIMEOUT_S = 3600.0


class ArtEvalBench(Benchmark):
    name = "artevalbench"
    title = "ArtEvalBench"
    answer_field = "answer"  # unused: the agent stage produces the work

    def parse_tasks(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        result = parse_task_list(records)
        if result.errors:
            problems = [Problem(p.record, p.field, p.message, p.artifact, p.first) for p in result.errors]
            first = problems[0]
            raise FormatError(
                first.record,
                first.field,
                first.message,
                source,
                first=first.first,
                who=first.who,
                more=problems[1:],
            )
        return result.tasks

    def parse_answers(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        raise FormatError(
            0,
            "<record>",
            "ArtEvalBench has no answer sets: the agent (spec.agent) reproduces each artifact during the "
            "run; remove spec.answers",
            source,
        )

    def categories(self, tasks: list[dict[str, Any]]) -> dict[str, int]:
        """Artifacts per environment: what a cluster must be able to pull and schedule."""
        return dict(Counter(task["env"] for task in tasks))

    def stages(self, spec: dict[str, Any]) -> list[StageInfo]:
        agent = "the agent phase, then " if spec.get("agent") else ""
        return [
            StageInfo(
                STAGE,
                "oracle",
                per_item_jobs=True,
                description=f"{agent}the artifact's four-stage evaluator, in one Job per artifact",
            )
        ]

    def stage_config(self, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
        oracle = spec.get("oracle") or {}
        agent = spec.get("agent")
        return {
            "agent": None
            if not agent
            else {
                "command": list(agent["command"]),
                "env": dict(agent.get("env") or {}),
                "pass_env": list(agent.get("passEnv") or []),
                "files": dict(agent.get("files") or {}),
                "timeout_s": float(agent.get("timeoutSeconds", DEFAULT_AGENT_TIMEOUT_S)),
                "network": bool(agent.get("network", False)),
                "memory_mb": agent.get("memoryMB"),
            },
            "evaluator_timeout_s": float(oracle.get("evaluatorTimeoutSeconds", DEFAULT_EVALUATOR_TIMEOUT_S)),
            "isolation": oracle.get("isolation", "sandbox"),
            "run_images_on_host": bool(oracle.get("runImagesOnHost", False)),
            "keep_limit_mb": 512,
        }

    def work_items(self, tasks, answers, spec):
        if spec.get("candidate"):
            raise ValueError(
                "ArtEvalBench evaluates agents (spec.agent), not candidate models (spec.candidate)"
            )
        config = self.stage_config(STAGE, spec)
        agent = spec.get("agent") or {}
        oracle = spec.get("oracle") or {}
        items, warnings = [], []
        for task in tasks:
            item = {"id": task["artifact_id"], **{k: v for k, v in task.items() if k != "notes"}}
            item["notes"] = list(task.get("notes") or [])
            image = task["env"] if task["env"] != "local" else agent.get("image")
            if agent.get("image") and task["env"] != "local" and agent["image"] != task["env"]:
                item["notes"].append(
                    f"runs in its own image {task['env']!r}; spec.agent.image applies to env: local artifacts"
                )
            item["job"] = {
                "image": image,
                "gpu": bool(task["gpu"]),
                "timeout_seconds": job_deadline(item, config),
                "privileged": bool(oracle.get("privileged", False)),
                "workspace": oracle.get("workspaceClaim") or "emptyDir",
            }
            warnings.extend(f"artifact {task['artifact_id']}: {note}" for note in item["notes"])
            items.append(item)
        if not spec.get("agent"):
            warnings.append("no spec.agent: each artifact is evaluated as packed, without an agent phase")
        return items, warnings

    def processor(self, stage: str, config: dict[str, Any]) -> StageProcessor:
        return ArtifactProcessor(config, stage)

    def aggregate(self, items, records, spec):
        rows = artifact_rows(items, records.get(STAGE, {}))
        n = len(rows)
        reached = sum(r["reached_expected"] for r in rows)
        scored = [r for r in rows if r["status"] == "ok"]
        scores: dict[str, float] = {
            "share_at_expected": round(reached / n, 4) if n else 0.0,
            "mean_score": round(sum(r["score"] for r in rows) / n, 3) if n else 0.0,
            "mean_score_scored": round(sum(r["score"] for r in scored) / len(scored), 3) if scored else 0.0,
        }
        stage_table: dict[str, dict[str, int]] = {}
        for stage in STAGES:
            reported = [r["stages"][stage] for r in rows if stage in r["stages"]]
            stage_table[stage] = {"passed": sum(reported), "failed": len(reported) - sum(reported)}
            if reported:
                scores[f"stage_pass_rate/{stage}"] = round(sum(reported) / len(reported), 4)
        for row in rows:
            scores[f"artifact/{row['id']}"] = float(row["score"])
        return {
            "headline": "share_at_expected",
            "scores": scores,
            "breakdowns": {
                "artifacts": {
                    r["id"]: {k: v for k, v in r.items() if k not in ("id", "stage_logs")} for r in rows
                },
                "stages": stage_table,
                "outcomes": dict(Counter(r["outcome"] for r in rows)),
            },
            "counts": {
                "artifacts": n,
                "scored": len(scored),
                "not_scored": n - len(scored),
                "reached_expected": reached,
            },
        }

    def exports(self, items, records, spec):
        """The original's `result.jsonl` and `avg_score.json`, plus the per-stage detail it does not keep."""
        rows = artifact_rows(items, records.get(STAGE, {}))
        lines = []
        for item, row in zip(items, rows, strict=True):
            evaluator = item["evaluator"]
            lines.append(
                {
                    "task_id": row["id"],
                    "artifact_id": row["id"],
                    "project_path": item.get("artifact_dir"),
                    "test_method": evaluator.get("path") or evaluator.get("command"),
                    "score": row["score"],
                    "expected_score": row["expected_score"],
                    "status": "success" if row["status"] == "ok" else f"error: {row['reason']}",
                    "stages": row["stages"],
                    "stage_logs": row["stage_logs"],
                    "outcome": row["outcome"],
                    "timestamp": row["finished_at"],
                }
            )
        n = len(rows)
        summary = {
            "final_score": sum(r["reached_expected"] for r in rows) / n if n else 0.0,
            "total_tasks": n,
            "mean_score": sum(r["score"] for r in rows) / n if n else 0.0,
        }
        return {
            "result.jsonl": "".join(json.dumps(line) + "\n" for line in lines).encode(),
            "avg_score.json": json.dumps(summary, indent=4).encode(),
        }


def artifact_rows(items: list[dict[str, Any]], records: dict[str, ItemRecord]) -> list[dict[str, Any]]:
    """One row per artifact: score (0 when it was not scored), stages, outcome and why."""
    rows = []
    for item in items:
        rec = records.get(item["id"])
        data = rec.data if rec else {}
        status = rec.status if rec else "missing"
        score = int(data.get("score") or 0) if status == "ok" else 0
        rows.append(
            {
                "id": item["id"],
                "status": status,
                "score": score,
                "max_score": data.get("max_score", 4),
                "expected_score": item["expected_score"],
                "reached_expected": bool(status == "ok" and data.get("reached_expected")),
                "outcome": data.get("outcome", "not run") if rec else "not run",
                "stages": {s["name"]: bool(s["passed"]) for s in data.get("stages") or []},
                "stage_logs": {s["name"]: s.get("excerpt", "") for s in data.get("stages") or []},
                "reason": rec.reason if rec else "no record",
                "leak_guard": data.get("leak_guard"),
                "finished_at": rec.finished_at if rec else None,
            }
        )
    return rows
