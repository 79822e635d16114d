"""Judge calibration: a judge must score a few known items inside their bands before it may score a run.

The shipped sets (`data/*.json`, with their images; sources in `data/ATTRIBUTION.md`) hold a few items
per benchmark: a task, an answer or reference, the image(s) the judge sees, and the band its score
must fall in — a working page or an exact reproduction high, an empty render low, and (for
ArtifactsBench) the same code shown with a blank screenshot below half, which only a judge that looks
at the image gets right. A text-only model behind a multimodal name, a wrong chat template or a
judge that ignores the images answers outside the bands.

Each item goes through the benchmark's own judge stage (`ArtifactsBenchJudge`, `Vision2CodeJudge`):
the items are built by the benchmark's own loader, the images are put in a scratch store as a
render would put them, and the stage builds the prompt, calls the judge through `JudgeClient` and
parses the reply exactly as in a run. `proctor judge check` prints the table; the operator keeps a
JudgeServer NotReady (reason CalibrationFailed) while an item is outside its band.

Importing this module is cheap; `calibrate` imports the judge stages (openai, Pillow) when called.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

BENCHMARKS = ("artifactsbench", "vision2code")
# Calibration is a readiness check: it must end in minutes even against a slow or broken judge.
CALIBRATION_JUDGE = {"timeoutSeconds": 120.0, "maxAttempts": 2, "outageSeconds": 30.0, "concurrency": 4}
SAID_CHARS = 60


@dataclass(frozen=True)
class CalibrationItem:
    benchmark: str
    id: str
    what: str
    band: tuple[float, float]
    record: dict[str, Any]  # the set's entry (task, answer / reference, image file names)


@dataclass
class Outcome:
    """What the judge gave one calibration item, and whether that is inside the band."""

    benchmark: str
    item: str
    band: tuple[float, float]
    score: float | None
    said: str = ""
    error: str | None = None
    calls: int = 0
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.benchmark}/{self.item}"

    @property
    def passed(self) -> bool:
        return self.error is None and in_band(self.score, self.band)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.name,
            "band": list(self.band),
            "score": self.score,
            "passed": self.passed,
            "said": self.said,
            "error": self.error,
            "calls": self.calls,
            "usage": self.usage,
        }


# --- the sets ---------------------------------------------------------------------------------------


def _data() -> Any:
    return resources.files(__package__).joinpath("data")


def load_set(benchmark: str) -> list[CalibrationItem]:
    """The shipped calibration items of one benchmark."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"no calibration set for {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    data = json.loads(_data().joinpath(f"{benchmark}.json").read_text(encoding="utf-8"))
    return [
        CalibrationItem(benchmark, e["id"], e.get("what", ""), (float(e["band"][0]), float(e["band"][1])), e)
        for e in data["items"]
    ]


def image_bytes(name: str) -> bytes:
    return _data().joinpath(name).read_bytes()


@functools.cache
def item_count(choice: str | None) -> int:
    """How many calibration items `choice` (see resolve_benchmarks) asks (the shipped sets never change
    while a process runs: read once)."""
    return sum(len(load_set(b)) for b in resolve_benchmarks(choice))


def resolve_benchmarks(choice: str | None) -> tuple[str, ...]:
    """`artifactsbench`, `vision2code`, or `all` / None (both)."""
    if choice in (None, "", "all"):
        return BENCHMARKS
    if choice not in BENCHMARKS:
        raise ValueError(f"unknown calibration benchmark {choice!r}; known: all, {', '.join(BENCHMARKS)}")
    return (choice,)


# --- bands and the report -----------------------------------------------------------------------------


def in_band(score: float | None, band: tuple[float, float]) -> bool:
    """Whether a score lies in the closed band [low, high] (no score is never in a band)."""
    if score is None:
        return False
    low, high = band
    return low <= score <= high


def _number(value: float) -> str:
    return f"{value:g}"


def _short(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(outcomes: list[Outcome], said_chars: int = SAID_CHARS) -> str:
    """A plain-text table: item, expected band, the judge's score, pass/fail, and what it said."""
    rows = [("item", "expected", "score", "result", "the judge said")]
    for o in outcomes:
        rows.append(
            (
                o.name,
                f"{_number(o.band[0])}-{_number(o.band[1])}",
                "-" if o.score is None else _number(o.score),
                "pass" if o.passed else "FAIL",
                _short(o.error or o.said, said_chars),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(row[-1]))
    return "\n".join(lines)


#: a Kubernetes termination message holds at most 4096 bytes
VERDICT_MAX_BYTES = 4096


def verdict(outcomes: list[Outcome] | None, error: str | None = None, said_chars: int = 50) -> str:
    """The calibration's verdict as one JSON object of at most VERDICT_MAX_BYTES: `passed`, `items`,
    `failed` (item names) and `message` (the summary, or why the calibration could not run). A
    calibration Job leaves it as its termination message; the operator copies it into the
    JudgeServer's status."""
    outcomes = outcomes or []
    value: dict[str, Any] = {
        "passed": error is None and all(o.passed for o in outcomes),
        "items": len(outcomes),
        "failed": [o.name for o in outcomes if not o.passed],
        "message": error if error is not None else summary(outcomes, said_chars=said_chars),
    }
    text = json.dumps(value, ensure_ascii=False)
    while len(text.encode()) > VERDICT_MAX_BYTES:  # long failure lists: the message is cut, then names
        if len(value["message"]) > 200:
            value["message"] = value["message"][: len(value["message"]) // 2] + " ..."
        else:
            value["failed"] = value["failed"][: len(value["failed"]) // 2]
        text = json.dumps(value, ensure_ascii=False)
    return text


def summary(outcomes: list[Outcome], said_chars: int = 80) -> str:
    """One line: how many items passed, and for each failure its score, band and words."""
    failures = [o for o in outcomes if not o.passed]
    if not failures:
        return f"calibration passed: {len(outcomes)} of {len(outcomes)} items inside their bands"
    parts = []
    for o in failures:
        got = o.error if o.error else f"scored {_number(o.score)}" if o.score is not None else "no score"
        said = f' ("{_short(o.said, said_chars)}")' if o.said and not o.error else ""
        parts.append(f"{o.name} {got}, expected {_number(o.band[0])}-{_number(o.band[1])}{said}")
    return f"calibration failed on {len(failures)} of {len(outcomes)} items: " + "; ".join(parts)


# --- asking the judge ---------------------------------------------------------------------------------


def _stage_items(item: CalibrationItem) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The work item the benchmark's own loader builds for this entry, and the images a render of it
    leaves in the store (store key, bytes)."""
    record = item.record
    if item.benchmark == "artifactsbench":
        from proctor_jobs.benchmarks.artifactsbench import ArtifactsBench

        bench = ArtifactsBench()
        tasks = bench.parse_tasks([record["task"]])
        answers = bench.parse_answers([{"index": record["task"]["index"], "answer": record["answer"]}])
        [work], _ = bench.work_items(tasks, answers, {})
        shots = [
            (f"cache/render/calibration-{item.id}/screenshot_{n}.png", image_bytes(name))
            for n, name in enumerate(record.get("screenshots") or [])
        ]
        return work, shots
    from proctor_jobs.benchmarks.vision2code import Vision2Code

    bench = Vision2Code()
    row = {**record["task"], "reference_image": base64.b64encode(image_bytes(record["reference"])).decode()}
    tasks = bench.parse_tasks([row])
    answers = bench.parse_answers([{"question_folder": tasks[0]["id"], "answer": "# calibration item"}])
    [work], _ = bench.work_items(tasks, answers, {})
    candidate = record.get("candidate")
    images = [(f"cache/render/calibration-{item.id}/render.png", image_bytes(candidate))] if candidate else []
    return work, images


def _render_record(item: CalibrationItem, work: dict[str, Any], images: list[tuple[str, bytes]]):
    from proctor_jobs.records import ok

    keys = [k for k, _ in images]
    if item.benchmark == "artifactsbench":
        data = {"extraction": {"kind": "html", "reason": "calibration item"}, "screenshots": keys}
        return ok(work["id"], "render", data=data)
    return ok(work["id"], "render", data={}, evidence={"image": keys[0]} if keys else {})


def _said(benchmark: str, record) -> str:
    if record.status != "ok":
        return record.reason or ""
    if benchmark == "artifactsbench":
        return (record.data or {}).get("judge_reason") or (record.data or {}).get("reply") or ""
    return record.reason or ""


async def _calibrate_benchmark(
    benchmark: str, items: list[CalibrationItem], judge: dict[str, Any], api_key: str | None, scratch: Path
) -> list[Outcome]:
    from proctor_jobs.benchmarks.base import StageContext
    from proctor_jobs.judge.config import judge_stage_config
    from proctor_jobs.layout import RunLayout
    from proctor_jobs.manifest import ShardManifest
    from proctor_jobs.store.fs import FilesystemStore

    if benchmark == "artifactsbench":
        from proctor_jobs.judge.artifactsbench import ArtifactsBenchJudge as Stage
    else:
        from proctor_jobs.judge.vision2code import Vision2CodeJudge as Stage

    run = f"runs/calibration/{benchmark}/judge-check"
    store = FilesystemStore(scratch / benchmark / "store")
    ctx = StageContext(
        store, RunLayout(run), ShardManifest(run, benchmark, "judge", 0, 1, []), scratch / benchmark
    )
    processor = Stage(judge_stage_config(benchmark, {"judge": judge}))
    if api_key is not None:  # a key from a Secret (the operator), not from this process's environment
        processor.config.api_key = lambda: api_key
    pairs = []
    for item in items:
        work, images = _stage_items(item)
        for key, data in images:
            store.put_bytes(key, data, "image/png")
        pairs.append((item, work, _render_record(item, work, images)))
    await processor.start(ctx)
    try:
        records = await asyncio.gather(
            *(processor.process(work, render, ctx) for _, work, render in pairs), return_exceptions=True
        )
    finally:
        await processor.stop()
    outcomes = []
    for (item, _, _), record in zip(pairs, records, strict=True):
        if isinstance(record, BaseException):
            outcomes.append(
                Outcome(benchmark, item.id, item.band, None, error=f"{type(record).__name__}: {record}")
            )
            continue
        data = record.data or {}
        error = None if record.status == "ok" else (record.reason or record.status)
        outcomes.append(
            Outcome(
                benchmark,
                item.id,
                item.band,
                record.score if record.status == "ok" else None,
                said=_said(benchmark, record),
                error=error,
                calls=int(data.get("calls") or 0),
                usage=dict(data.get("usage") or {}),
            )
        )
    return outcomes


async def calibrate(
    url: str,
    model: str | None = None,
    benchmarks: tuple[str, ...] = BENCHMARKS,
    api_key: str | None = None,
    judge: dict[str, Any] | None = None,
) -> list[Outcome]:
    """Ask the judge at `url` about every calibration item of `benchmarks`, as a run's judge stage
    would (its `spec.judge` settings, plus the bounded timeouts in CALIBRATION_JUDGE), and return
    what it gave each. `api_key` None: the key comes from the environment, as in a worker."""
    settings = {**CALIBRATION_JUDGE, **(judge or {}), "url": url}
    if model:
        settings["model"] = model
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="proctor-calibration-") as scratch:
        for benchmark in benchmarks:
            outcomes += await _calibrate_benchmark(
                benchmark, load_set(benchmark), settings, api_key, Path(scratch)
            )
    return outcomes


__all__ = [
    "BENCHMARKS",
    "CalibrationItem",
    "Outcome",
    "calibrate",
    "in_band",
    "load_set",
    "resolve_benchmarks",
    "summary",
    "table",
]
