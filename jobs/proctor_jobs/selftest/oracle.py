"""Hostile HumanEval-V answers through the real oracle stage, beside well-behaved neighbours."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from proctor_jobs.benchmarks.base import StageContext
from proctor_jobs.benchmarks.humanevalv import HumanEvalV
from proctor_jobs.layout import RunLayout
from proctor_jobs.manifest import ShardManifest
from proctor_jobs.records import ItemRecord
from proctor_jobs.selftest import Canary, answer_text
from proctor_jobs.store.fs import FilesystemStore
from proctor_jobs.worker import _process_items

SIGNATURE = (
    'def solution(n: int) -> int:\n    """\n    Count the blocks in a staircase of height n.\n    """\n'
)
TEST = (
    "def check(candidate):\n"
    "    assert candidate(1) == 1, 'solution(1) should be 1'\n"
    "    assert candidate(4) == 10, 'solution(4) should be 10'\n"
    "    assert candidate(10) == 55, 'solution(10) should be 55'\n"
    "    try:\n"
    "        assert candidate(0) == 0, 'solution(0) should be 0'\n"
    "    except Exception:\n"  # a test that swallows errors must not let a dead candidate pass
    "        pass\n"
    "\n"
    "check(solution)\n"
)
CORRECT = "```python\ndef solution(n):\n    return n * (n + 1) // 2\n```\n"
WRONG = "```python\ndef solution(n):\n    return n\n```\n"
NEIGHBOURS = 6  # correct and as many wrong samples run beside the attacks


async def run_oracle_cases(
    cases: list[dict[str, Any]],
    *,
    canary: Canary,
    scratch: Path,
    tier: str | None = None,
    verdict: str = "harness",
) -> list[dict[str, Any]]:
    """Run `cases` in one shard with neighbours; one row per case plus one for the neighbours."""
    scratch.mkdir(parents=True, exist_ok=True)
    token = canary.secrets["PROCTOR_REFERENCE"]
    reference = f"def solution(n):\n    # {token}\n    return n * (n + 1) // 2\n"
    data = scratch / "data"
    data.mkdir(exist_ok=True)
    tasks_path = data / "tasks.jsonl"
    task = {"qid": "hv01", "function_signature": SIGNATURE, "test_script": TEST,
            "ground_truth_solution": reference}
    tasks_path.write_text(json.dumps(task) + "\n")
    store = FilesystemStore(scratch / "store")
    store.put_bytes("reference.txt", reference.encode())
    outside = scratch / "outside-marker"
    substitutions = {
        "@@CANARY_PORT@@": str(canary.port),
        "@@TASKS_PATH@@": str(tasks_path),
        "@@STORE_PATH@@": str(store.root),
        "@@OUTSIDE_PATH@@": str(outside),
    }
    answers = [answer_text(c, substitutions) for c in cases]
    answers += [CORRECT] * NEIGHBOURS + [WRONG] * NEIGHBOURS
    bench = HumanEvalV()
    spec = {"oracle": {"timeoutSeconds": 2, "verdict": verdict, "minIsolation": "none"}}
    tasks = bench.parse_tasks([task])
    items, _ = bench.work_items(tasks, bench.parse_answers([{"qid": "hv01", "predictions": answers}]), spec)
    config = bench.stage_config("oracle", spec)
    processor = bench.processor("oracle", config)
    layout = RunLayout.for_run("selftest", "hostile", "run")
    manifest = ShardManifest(layout.prefix, "humanevalv", "oracle", 0, 1, items, config)
    ctx = StageContext(store, layout, manifest, scratch / "work")
    (scratch / "work").mkdir(exist_ok=True)
    records: dict[str, ItemRecord] = {}
    finished: dict[str, float] = {}
    started = time.monotonic()

    def record(rec: ItemRecord) -> None:
        records[rec.id] = rec
        finished[rec.id] = time.monotonic() - started

    saved = {k: os.environ.get(k) for k in (*canary.secrets, "PROCTOR_SANDBOX_TIER")}
    os.environ.update(canary.secrets)  # what a worker pod holds: the sandbox must not pass it on
    if tier:
        os.environ["PROCTOR_SANDBOX_TIER"] = tier
    try:
        await _process_items(processor, items, {}, ctx, record)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    reached = (processor.sandbox.tier if processor.sandbox else None) or "?"
    everything = json.dumps([r.to_dict() for r in records.values()], default=str)
    rows = []
    for case, item in zip(cases, items, strict=False):
        rec = records.get(item["id"])
        rows.append(_case_row(case, rec, finished.get(item["id"], 0.0), reached, canary))
    neighbours = items[len(cases) :]
    changed = []
    for i, item in enumerate(neighbours):
        rec = records.get(item["id"])
        want = i < NEIGHBOURS
        if rec is None or rec.status != "ok" or bool(rec.data.get("passed")) != want:
            changed.append(f"{item['id']}: {rec.reason if rec else 'no record'}")
    leaks = canary.leaked(everything)
    escaped_files = outside.exists()
    detail = []
    if changed:
        detail.append(f"neighbours changed: {changed[:3]}")
    if leaks:
        detail.append(f"secrets in records: {leaks}")
    if canary.seen:
        detail.append(f"canary saw {len(canary.seen)} connection(s)")
    if escaped_files:
        detail.append("a file appeared outside the scratch directory")
    rows.append(
        {
            "attack": "(neighbours, secrets, canary)",
            "target": "oracle",
            "tier": reached,
            "outcome": "; ".join(detail)
            or f"{2 * NEIGHBOURS} neighbours unchanged, no secret, no connection",
            "expected": "unchanged, none, none",
            "time_s": max(finished.values(), default=0.0),
            "escaped": bool(detail),
            "detail": "; ".join(detail),
        }
    )
    return rows


def _case_row(case, rec: ItemRecord | None, seconds: float, tier: str, canary: Canary) -> dict[str, Any]:
    expect = case["expect"]
    problems = []
    if rec is None:
        outcome = "no record"
        problems.append("no record")
    else:
        passed = bool(rec.status == "ok" and rec.data.get("passed"))
        outcome = "passed" if passed else f"failed: {(rec.reason or rec.data.get('result') or '')[:120]}"
        if "passed" in expect and passed != bool(expect["passed"]):
            problems.append(f"expected passed={expect['passed']}")
        wanted = expect.get("reason_contains")
        if wanted and wanted not in (rec.reason or "") + str(rec.data.get("result", "")):
            problems.append(f"reason lacks {wanted!r}")
        leaks = canary.leaked(json.dumps(rec.to_dict(), default=str))
        if leaks:
            problems.append(f"secrets in its record: {leaks}")
    return {
        "attack": case["name"],
        "target": "oracle",
        "tier": tier,
        "outcome": outcome,
        "expected": json.dumps(expect),
        "time_s": round(seconds, 2),
        "escaped": bool(problems),
        "detail": "; ".join(problems),
    }


def run(cases, canary, scratch, tier=None, verdict="harness"):
    return asyncio.run(run_oracle_cases(cases, canary=canary, scratch=scratch, tier=tier, verdict=verdict))
