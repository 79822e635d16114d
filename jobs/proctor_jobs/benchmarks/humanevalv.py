"""HumanEval-V: visual coding tasks scored by unit tests, reported as pass@k.

Tasks use HumanEval-V's fields (`qid`, `function_signature`, `test_script`, the diagram as a file
path or base64 / data URL, optional `ground_truth_solution`, `task_type`, `capability_aspects`).
Answers use its prediction format (`{qid, prompt?, predictions: [...]}`). Split predictions — every
qid on the same number of rows, each row holding some of its samples — are merged, as the original's
`aggregate_prediction_data` does; a qid on more rows than the others, or the same row twice, is a
duplicate and refused naming both lines (the original would silently change `n` for every task).

One stage, `oracle`: extract (see `humanevalv_extract`), gate through pylint (errors and fatals fail
the sample, `function-redefined` excepted — on by default, as in the original), then run the program
in the sandbox with a 2 s timeout.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib.metadata
import json
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from proctor_jobs.benchmarks.base import (
    UNREADABLE,
    Benchmark,
    FormatError,
    StageContext,
    StageInfo,
    StageProcessor,
    refuse_repeats,
)
from proctor_jobs.benchmarks.humanevalv_extract import EMPTY_BODY, extract
from proctor_jobs.oracle import Sandbox, SandboxLimits
from proctor_jobs.oracle.sandbox import DEFAULT_PRELOAD
from proctor_jobs.records import EnvironmentMissing, ItemRecord, ok
from proctor_jobs.scoring.passk import default_ks, mean_pass_at_k

PYLINT_PREFIX = "Pylint syntax check failed:"
_QID = re.compile(r"^[A-Za-z0-9_.:-]+$")


def _require_str(row: dict, index: int, name: str, source: str, allow_empty: bool = False) -> str:
    if name not in row:
        raise FormatError(index, name, "missing", source)
    value = row[name]
    if not isinstance(value, str):
        raise FormatError(index, name, f"expected a string, got {type(value).__name__}", source)
    if not allow_empty and not value.strip():
        raise FormatError(index, name, "empty", source)
    return value


def decode_image(value: Any) -> bytes | None:
    """A diagram given as base64, a data URL, or {"bytes": ...} (Hugging Face's Image feature)."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("base64")
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("data:"):
        value = value.split(",", 1)[1]
    return base64.b64decode(value, validate=False)


class HumanEvalV(Benchmark):
    name = "humanevalv"
    title = "HumanEval-V"
    answer_field = "prediction"

    def parse_tasks(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for i, row in enumerate(records):
            if not isinstance(row, dict):
                raise FormatError(i, "<record>", f"expected an object, got {type(row).__name__}", source)
            qid = _require_str(row, i, "qid", source)
            if not _QID.match(qid):
                raise FormatError(i, "qid", f"{qid!r} may only contain letters, digits and . _ : -", source)
            if qid in seen:
                raise FormatError(i, "qid", f"duplicate qid {qid!r}", source, first=seen[qid])
            seen[qid] = i
            task = {
                "qid": qid,
                "function_signature": _require_str(row, i, "function_signature", source),
                "test_script": _require_str(row, i, "test_script", source),
            }
            for optional in ("ground_truth_solution", "task_type", "ground_truth_diagram_description"):
                if optional in row and row[optional] is not None:
                    task[optional] = _require_str(row, i, optional, source, allow_empty=True)
            if "capability_aspects" in row and not isinstance(row["capability_aspects"], dict | type(None)):
                raise FormatError(i, "capability_aspects", "expected an object", source)
            task["capability_aspects"] = row.get("capability_aspects") or {}
            image = row.get("diagram", row.get("image"))
            if image is not None:
                try:
                    if decode_image(image) is None:
                        raise ValueError("not base64, a data URL or {bytes}")
                except (ValueError, TypeError) as exc:
                    raise FormatError(i, "diagram", f"cannot decode the image: {exc}", source) from None
                task["diagram"] = (
                    image if isinstance(image, str) else base64.b64encode(decode_image(image)).decode()
                )
            tasks.append(task)
        return tasks

    def parse_answers(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        rows: dict[tuple[str, str], int] = {}
        qids = []
        for i, row in enumerate(records):
            if not isinstance(row, dict):
                raise FormatError(i, "<record>", f"expected an object, got {type(row).__name__}", source)
            qid = _require_str(row, i, "qid", source)
            predictions = row.get("predictions")
            if not isinstance(predictions, list):
                raise FormatError(i, "predictions", "missing or not a list of strings", source)
            for j, p in enumerate(predictions):
                if not isinstance(p, str):
                    raise FormatError(
                        i, f"predictions[{j}]", f"expected a string, got {type(p).__name__}", source
                    )
            same = rows.setdefault((qid, json.dumps(predictions)), i)
            if same != i:
                raise FormatError(
                    i, "qid", f"duplicate qid {qid!r} (the same predictions)", source, first=same
                )
            qids.append(qid)
            entry = merged.setdefault(qid, {"qid": qid, "predictions": [], "prompts": []})
            entry["predictions"].extend(predictions)
            entry["prompts"].extend([row.get("prompt")] * len(predictions))
            if row.get(UNREADABLE) or UNREADABLE in entry:
                before = len(entry["predictions"]) - len(predictions)
                flags = entry.setdefault(UNREADABLE, [None] * before)
                flags.extend([row.get(UNREADABLE)] * len(predictions))
        refuse_repeats(qids, "qid", "qid", source)
        return list(merged.values())

    def categories(self, tasks: list[dict[str, Any]]) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for task in tasks:
            counts[task.get("task_type") or "uncategorised"] += 1
        return dict(counts)

    def stages(self, spec: dict[str, Any]) -> list[StageInfo]:
        return [
            StageInfo("oracle", "oracle", description="extract, pylint gate, run the tests in the sandbox")
        ]

    def work_items(self, tasks, answers, spec):
        if answers is None:
            samples = int((spec.get("candidate") or {}).get("samples", 0))
            if not samples:
                raise ValueError("HumanEval-V needs spec.answers or a candidate model (spec.candidate)")
            # The generate stage fills in each sample's prediction.
            answers = [{"qid": t["qid"], "predictions": [""] * samples} for t in tasks]
        by_qid = {a["qid"]: a for a in answers}
        warnings = [
            f"answers for qid {q!r} match no task and are ignored"
            for q in by_qid
            if q not in {t["qid"] for t in tasks}
        ]
        n = max((len(a["predictions"]) for a in answers), default=0)
        items = []
        for task in tasks:
            predictions = list(by_qid.get(task["qid"], {}).get("predictions", []))
            unreadable = by_qid.get(task["qid"], {}).get(UNREADABLE) or []
            if len(predictions) != n:
                warnings.append(
                    f"qid {task['qid']!r} has {len(predictions)} predictions, others {n}; "
                    "missing samples count as failures"
                )
            for j in range(n):
                missing = j >= len(predictions)
                items.append(
                    {
                        "id": f"{task['qid']}/{j}",
                        "qid": task["qid"],
                        "sample": j,
                        "prediction": "" if missing else predictions[j],
                        "missing": missing,
                        "function_signature": task["function_signature"],
                        "test_script": task["test_script"],
                        **({UNREADABLE: unreadable[j]} if j < len(unreadable) and unreadable[j] else {}),
                    }
                )
        return items, warnings

    def stage_config(self, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
        oracle = spec.get("oracle") or {}
        return {
            "timeout_s": float(oracle.get("timeoutSeconds", 2.0)),
            "memory_mb": int(oracle.get("memoryMB", 2048)),
            "max_processes": int(oracle.get("maxProcesses", 64)),
            "max_file_mb": int(oracle.get("maxFileMB", 64)),
            "pylint": bool(oracle.get("pylint", True)),
            "concurrency": int(oracle.get("concurrency", 0)),
            "verdict": str(oracle.get("verdict", "harness")),
            "min_isolation": str(oracle.get("minIsolation", "userns")),
            "max_answer_bytes": int(oracle.get("maxAnswerBytes", 1 << 20)),
        }

    def processor(self, stage: str, config: dict[str, Any]) -> StageProcessor:
        return HumanEvalVOracle(config)

    def aggregate(self, items, records, spec):
        oracle = records.get("oracle", {})
        by_qid: dict[str, list[bool]] = defaultdict(list)
        pylint_failed = evaluated = 0
        reasons: dict[str, int] = defaultdict(int)
        for item in items:
            rec = oracle.get(item["id"])
            passed = bool(rec and rec.status == "ok" and rec.data.get("passed"))
            by_qid[item["qid"]].append(passed)
            if rec and rec.status == "ok":
                evaluated += 1
                if rec.data.get("pylint_failed"):
                    pylint_failed += 1
            if rec and not passed:
                reasons[_reason_class(rec)] += 1
        n = min((len(v) for v in by_qid.values()), default=0)
        requested = list((spec.get("scoring") or {}).get("passK") or [])
        ks = sorted({k for k in (requested or default_ks(n)) if 1 <= k <= n})
        scores = {f"pass@{k}": round(mean_pass_at_k(by_qid.values(), k), 1) for k in ks}
        total = len(items)
        scores["parse_success_rate"] = round(100.0 * (1 - pylint_failed / total), 1) if total else 0.0
        headline = f"pass@{ks[0]}" if ks else "parse_success_rate"
        per_task = {qid: {"n": len(v), "c": sum(v)} for qid, v in by_qid.items()}
        return {
            "headline": headline,
            "scores": scores,
            "breakdowns": {"per_task": per_task, "failure_reasons": dict(reasons)},
            "counts": {"tasks": len(by_qid), "samples_per_task": n, "evaluated": evaluated},
        }

    def exports(self, items, records, spec):
        """`*_executed.json` as the original writes it, so its analysis scripts keep working."""
        oracle = records.get("oracle", {})
        by_qid: dict[str, dict[str, Any]] = {}
        for item in items:
            entry = by_qid.setdefault(
                item["qid"],
                {
                    "qid": item["qid"],
                    "predictions": [],
                    "processed_predictions": [],
                    "concatenated_predictions": [],
                    "results": [],
                },
            )
            rec = oracle.get(item["id"])
            data = rec.data if rec else {}
            completion = data.get("completion", "")
            sig = (
                item["function_signature"]
                if item["function_signature"].endswith("\n")
                else item["function_signature"] + "\n"
            )
            entry["predictions"].append(item["prediction"])
            entry["processed_predictions"].append(completion)
            entry["concatenated_predictions"].append(
                sig + "    pass\n\n" + completion + "\n\n" + item["test_script"]
            )
            entry["results"].append(
                {
                    "qid": item["qid"],
                    "task_id": item["sample"],
                    "passed": bool(data.get("passed")),
                    "result": data.get("result", rec.reason if rec else "not evaluated"),
                }
            )
        return {"humanevalv_executed.json": json.dumps(list(by_qid.values()), indent=4).encode()}


def _reason_class(rec: ItemRecord) -> str:
    if rec.status != "ok":
        return f"{rec.status}: {(rec.reason or '')[:60]}"
    reason = rec.reason or ""
    if rec.data.get("pylint_failed"):
        return "pylint"
    return reason.split(":", 1)[0][:60] or "failed"


class HumanEvalVOracle(StageProcessor):
    """Runs each sample's program in the sandbox; pylint is run once per shard over all programs."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.concurrency = config.get("concurrency") or len(os.sched_getaffinity(0))
        self.limits = SandboxLimits(
            wall_seconds=config["timeout_s"],
            memory_mb=config["memory_mb"],
            max_processes=config["max_processes"],
            max_file_mb=config["max_file_mb"],
        )
        self.item_deadline_s = config["timeout_s"] + 30.0
        self.sandbox: Sandbox | None = None
        self.linter: Sandbox | None = None
        self.programs: dict[str, Any] = {}
        self.pylint_errors: dict[str, list[str]] = {}

    async def start(self, ctx: StageContext) -> None:
        hide = [str(ctx.store.root)] if hasattr(ctx.store, "root") else []
        # Programs fork from a lean server; pylint from its own, warm one. A server carrying pylint's
        # caches is several times larger, and every fork copies the page tables of what it carries.
        self.sandbox = Sandbox(concurrency=self.concurrency, hide=hide, base_dir=ctx.scratch / "sandbox")
        await self.sandbox.__aenter__()
        # A weaker sandbox than the run accepts is the environment's failure, not the answers': refuse
        # the shard (the run says why) rather than record every sample as failed or run it unconfined.
        require_tier(self.sandbox.tier, self.config.get("min_isolation", "userns"))
        if self.config["pylint"]:
            self.linter = Sandbox(
                concurrency=self.concurrency,
                hide=hide,
                base_dir=ctx.scratch / "linter",
                preload=(*DEFAULT_PRELOAD, *PYLINT_PRELOAD),
            )
            await self.linter.__aenter__()

    async def stop(self) -> None:
        for sandbox in (self.sandbox, self.linter):
            if sandbox:
                await sandbox.close()

    def _too_large(self, item) -> bool:
        return len(item["prediction"].encode("utf-8", "surrogatepass")) > self.config.get(
            "max_answer_bytes", 1 << 20
        )

    async def prepare(self, items, upstream, ctx) -> None:
        for item in items:
            if self._too_large(item):
                continue  # neither extracted nor linted: recorded as answer_too_large
            self.programs[item["id"]] = extract(
                item["prediction"], item["function_signature"], item["test_script"]
            )
        if self.config["pylint"] and self.programs:
            self.pylint_errors = await run_pylint(
                self.linter, {item_id: extraction.program for item_id, extraction in self.programs.items()}
            )

    async def process(self, item, upstream, ctx) -> ItemRecord:
        if self._too_large(item):
            size = len(item["prediction"].encode("utf-8", "surrogatepass"))
            limit = self.config.get("max_answer_bytes", 1 << 20)
            reason = f"answer_too_large: {size} bytes, the limit is {limit} (spec.oracle.maxAnswerBytes)"
            data = {"qid": item["qid"], "sample": item["sample"], "passed": False, "pylint_failed": False}
            data["result"] = reason
            return ok(item["id"], "oracle", score=0.0, reason=reason, data=data)
        extraction = self.programs.get(item["id"]) or extract(
            item["prediction"], item["function_signature"], item["test_script"]
        )
        data: dict[str, Any] = {
            "qid": item["qid"],
            "sample": item["sample"],
            "completion": extraction.completion,
            "extraction": {"rule": extraction.rule, "parsed": extraction.parsed},
            "passed": False,
            "pylint_failed": False,
        }
        if item.get("missing"):
            data["result"] = "no prediction for this sample"
            return ok(item["id"], "oracle", score=0.0, reason="missing prediction", data=data)
        errors = self.pylint_errors.get(item["id"])
        if self.config["pylint"]:
            data["pylint_version"] = pylint_version()  # the original pins 3.3.4 (docs/fidelity.md)
        if errors:
            result = PYLINT_PREFIX + "\n" + "\n".join(errors)
            data.update(result=result, pylint_failed=True)
            return ok(item["id"], "oracle", score=0.0, reason=f"pylint: {errors[0][:200]}", data=data)
        if self.config.get("verdict", "harness") == "harness":
            signature = item["function_signature"]
            run = await self.sandbox.run_test(
                candidate_program(signature, extraction.completion),
                item["test_script"],
                entry_point(signature),
                self.limits,
                signature=signature,
            )
        else:  # the original's single process: faithful, and forgeable by the answer (docs/security.md)
            run = await self.sandbox.run_python(extraction.program, self.limits)
        if run.status == "crashed":
            raise RuntimeError(f"sandbox crashed: {run.error}")
        passed = run.ok
        if passed:
            result = "passed"
        elif run.status == "timeout":
            result = f"Test Case Execution Time Out (> {self.config['timeout_s']:g} seconds)"
        elif run.exception:
            result = run.exception.get("message", "")
        else:
            result = run.reason
        data.update(
            passed=passed,
            result=result,
            duration_s=run.duration_s,
            isolation=run.isolation,
            verdict_by=self.config.get("verdict", "harness"),
            stderr=run.stderr[-2000:] if not passed else "",
        )
        if run.budget:
            data["budget"] = run.budget
        return ok(
            item["id"],
            "oracle",
            score=1.0 if passed else 0.0,
            reason=None if passed else run.reason,
            data=data,
        )


_ENTRY = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)
TIERS = ("none", "userns", "root")


@functools.cache
def pylint_version() -> str:
    try:
        return importlib.metadata.version("pylint")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def entry_point(signature: str) -> str:
    """The function the test script calls: the signature's first `def` (HumanEval-V: `solution`)."""
    match = _ENTRY.search(signature)
    return match.group(1) if match else "solution"


def candidate_program(signature: str, completion: str) -> str:
    """What runs in the sandbox in harness mode: the original program without the test script."""
    sig = signature if signature.endswith("\n") else signature + "\n"
    return sig + EMPTY_BODY + "\n\n" + completion + "\n"


def require_tier(tier: str | None, minimum: str) -> None:
    """Refuse a sandbox weaker than the run accepts. The machine's failure, not the answers': every item
    is recorded `env_error` with this reason (never scored, redone on a rerun) and the run fails saying so."""
    if TIERS.index(tier or "none") < TIERS.index(minimum):
        raise EnvironmentMissing(
            f"isolation_below_minimum: the sandbox could only set up tier {tier!r}, the run requires "
            f"{minimum!r} (spec.oracle.minIsolation)",
            "what the tier needs (docs/security.md, Tiers): in a cluster the chart's worker.seccompProfile",
        )


PYLINT_PRELOAD = ("pylint.lint", "pylint.reporters.json_reporter", "proctor_jobs.oracle.pylint_warm")

# Runs inside a confined child of a fork server that has pylint imported already (see PYLINT_PRELOAD):
# the gate then costs the linting, not a fresh interpreter and pylint's imports per shard.
_PYLINT_PROGRAM = """
import json, sys
from pylint.lint import Run
from pylint.reporters.json_reporter import JSONReporter

files = json.loads(open("files.json").read())
options = ["--score=n", "--persistent=n", "--disable=all", "--enable=E,F", "--disable=function-redefined"]
with open("pylint.json", "w") as out:
    Run([*options, *files], reporter=JSONReporter(out), exit=False)
"""


async def run_pylint(sandbox: Sandbox, programs: dict[str, Any]) -> dict[str, list[str]]:
    """pylint over every program of the shard; returns error/fatal messages per item.

    Equivalent to the original's per-sample `Run([...])` filtered to error/fatal minus
    function-redefined. The programs are split into one chunk per sandbox slot and linted at once,
    each chunk in one pylint run. Runs in the sandbox: pylint's inference imports nothing from the
    programs, but they are untrusted text all the same.
    """
    errors: dict[str, list[str]] = defaultdict(list)
    lintable = {}
    for item_id, program in programs.items():
        try:
            program.encode("utf-8")
            lintable[item_id] = program
        except UnicodeEncodeError as exc:
            # The original writes the program to a file first and fails on it: that sample only.
            errors[item_id].append(f"the program is not valid UTF-8 text ({exc.reason} at {exc.start})")
    names = {f"s{i:05d}.py": item_id for i, item_id in enumerate(lintable)}
    chunks = max(1, min(sandbox.concurrency, len(names)))
    ordered = sorted(names)
    groups = [ordered[i::chunks] for i in range(chunks)]
    results = await asyncio.gather(
        *(_pylint_isolating_failures(sandbox, group, names, lintable, errors) for group in groups if group)
    )
    for messages in results:
        for message in messages:
            if message.get("type") in ("error", "fatal") and message.get("symbol") != "function-redefined":
                item_id = names.get(Path(message.get("path", "")).name)
                if item_id:
                    errors[item_id].append(message.get("message", ""))
    return dict(errors)


async def _pylint_isolating_failures(sandbox, group, names, programs, errors) -> list[dict]:
    """One chunk; if pylint cannot get through it, each program alone, so that one answer that breaks
    pylint fails its own gate and never its neighbours'."""
    try:
        return await _pylint_chunk(sandbox, group, names, programs)
    except RuntimeError:
        if len(group) == 1:
            raise
    messages: list[dict] = []
    for name in group:
        try:
            messages += await _pylint_chunk(sandbox, [name], names, programs)
        except RuntimeError as exc:
            errors[names[name]].append(f"pylint could not check this program: {str(exc)[:300]}")
    return messages


async def _pylint_chunk(sandbox: Sandbox, group: list[str], names: dict[str, str], programs) -> list[dict]:
    files = {name: programs[names[name]] for name in group}
    files["files.json"] = json.dumps(group)
    limits = SandboxLimits(
        wall_seconds=60 + 2 * len(group), memory_mb=4096, max_processes=32, max_file_mb=256
    )
    run = await sandbox.run_python(_PYLINT_PROGRAM, limits, files=files, keep=True, filename="<pylint>")
    try:
        report = Path(run.scratch or "") / "pylint.json"
        if run.status != "exited" or not report.is_file():
            raise RuntimeError(f"pylint could not run ({run.reason}): {run.stderr[-500:]}")
        try:
            return json.loads(report.read_text() or "[]")
        except ValueError as exc:
            raise RuntimeError(f"pylint wrote no JSON report: {exc}; {run.stderr[-300:]}") from exc
    finally:
        if run.scratch:
            shutil.rmtree(Path(run.scratch).parent, ignore_errors=True)
