"""Read an evaluator's verdict: which of the four oracle stages passed, and the artifact's score 0-4.

In order of preference:

1. a JSON line, e.g. ``{"stages": {"env_setup": true, "build": {"ok": false, "log": "..."}}}`` (Proctor's
   format for new evaluators; `scores` may stand for `stages`, and values may be true/false, 0/1 or
   objects with `ok`/`passed` and `log`);
2. the original evaluators' log line ``Agent scores: {'OracleEnvSetup': 1, ...}``, parsed as a mapping
   (the original counts the substring ": 1", which also counts ": 10" and misses ": True");
3. a last stdout line that is a bare number (the original's smoke-test evaluator prints one);
4. the exit status, when it is 0-4 and the evaluator did not crash (the original evaluators exit with
   their score).

Stage names are normalised (OracleEnvSetup, EnvironmentSetup, env_setup -> env_setup; ...), and each stage
gets an excerpt of the log: the lines from its ``<Label>: PASS|FAIL`` header to the next header.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import asdict, dataclass, field

STAGES = ("env_setup", "build", "benchmark_prep", "experiment_runs")
STAGE_TITLES = {
    "env_setup": "environment setup",
    "build": "build/install",
    "benchmark_prep": "benchmark preparation",
    "experiment_runs": "experiment runs",
}
EXCERPT_CHARS = 2000
_HEADER = re.compile(r"([A-Za-z][\w/.\- ]*?)\s*:\s*(PASS|FAIL)\b", re.IGNORECASE)
_AGENT_SCORES = re.compile(r"Agent scores:\s*(?=\{)")
_CRASH_SIGNS = ("Traceback (most recent call last)", "can't open file", "command not found")


@dataclass
class StageResult:
    name: str  # canonical name, or the evaluator's own when it is not one of the four
    label: str  # as the evaluator reported it
    passed: bool
    excerpt: str = ""


@dataclass
class Verdict:
    score: int | None  # None: the output gave no score
    max_score: int = 4
    source: str = "none"  # json | agent_scores | number | exit_status | none
    stages: list[StageResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def canonical_stage(label: str) -> str:
    """Map an evaluator's stage label to one of STAGES (or a cleaned-up label when it is none of them)."""
    key = re.sub(r"[^a-z]", "", label.lower())
    key = key.removeprefix("oracle")
    if "env" in key or key == "setup":
        return "env_setup"
    if "build" in key or "install" in key or "compil" in key:
        return "build"
    if "prep" in key or "dataset" in key or key in ("data", "benchmark"):
        return "benchmark_prep"
    if "experiment" in key or key.endswith("runs") or key in ("run", "reproduce"):
        return "experiment_runs"
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "stage"


def _passed(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value > 0
    if isinstance(value, str) and value.strip().lower() in ("pass", "passed", "ok", "true", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("fail", "failed", "false", "0"):
        return False
    if isinstance(value, dict):
        for key in ("ok", "passed", "pass", "score"):
            if key in value:
                return _passed(value[key])
    return None


def _balanced_object(text: str, start: int) -> str | None:
    """The `{...}` starting at `start`, with nested braces and quoted strings respected."""
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
        elif ch == "\n" and depth == 0:
            return None
    return None


def _mapping(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def _json_line(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not (line.startswith("{") and line.endswith("}")):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and (
            isinstance(value.get("stages"), dict)
            or isinstance(value.get("scores"), dict)
            or _is_score(value.get("score"))
        ):
            return value
    return None


def _is_score(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _agent_scores(text: str) -> dict | None:
    matches = list(_AGENT_SCORES.finditer(text))
    for match in reversed(matches):
        body = _balanced_object(text, match.end())
        mapping = _mapping(body) if body else None
        if mapping is not None:
            return mapping
    return None


def excerpts(log: str) -> dict[str, str]:
    """Per stage, the log lines from its `<Label>: PASS|FAIL` header up to the next header."""
    lines = log.splitlines()
    headers = [(i, m.group(1).strip()) for i, line in enumerate(lines) if (m := _HEADER.search(line))]
    out: dict[str, str] = {}
    for n, (start, label) in enumerate(headers):
        end = headers[n + 1][0] if n + 1 < len(headers) else len(lines)
        chunk = [ln for ln in lines[start:end] if "Agent scores:" not in ln][:40]
        out.setdefault(_header_stage(label), "\n".join(chunk)[:EXCERPT_CHARS])
    return out


def _header_stage(label: str) -> str:
    """`BenchmarkPrep/osdi24-eet` -> benchmark_prep; `INFO | EnvironmentSetup` -> env_setup."""
    label = label.split("/")[0]
    name = canonical_stage(label)
    return name if name in STAGES or not label.split() else canonical_stage(label.split()[-1])


def parse_verdict(stdout: str, stderr: str, exit_code: int | None, crashed: bool = False) -> Verdict:
    """The verdict of an evaluator run that finished (a timeout is handled by the caller)."""
    log = f"{stdout}\n{stderr}"
    stage_logs = excerpts(log)
    verdict = _from_json(_json_line(stdout) or _json_line(stderr), stage_logs)
    if verdict is None:
        scores = _agent_scores(log)
        if scores is not None:
            verdict = _from_mapping(scores, stage_logs, "agent_scores")
    if verdict is None:
        verdict = _from_number(stdout)
    if verdict is None and not crashed and exit_code is not None and 0 <= exit_code <= 4:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        sign = next((s for s in _CRASH_SIGNS if s in tail), None)
        if sign and exit_code != 0:
            return Verdict(None, source="none", notes=[f"the evaluator crashed ({sign!r} in its output)"])
        verdict = Verdict(
            exit_code, source="exit_status", notes=["no structured output; score is the exit status"]
        )
    if verdict is None:
        return Verdict(None, source="none", notes=["the evaluator reported no score"])
    structured = verdict.source in ("json", "agent_scores")
    if structured and exit_code is not None and 0 < exit_code <= 4 and verdict.score != exit_code:
        verdict.notes.append(f"exit status {exit_code} differs from the reported stages; the stages count")
    return verdict


def _from_json(value: dict | None, stage_logs: dict[str, str]) -> Verdict | None:
    if value is None:
        return None
    stages = value.get("stages") if isinstance(value.get("stages"), dict) else value.get("scores")
    if isinstance(stages, dict):
        verdict = _from_mapping(stages, stage_logs, "json")
        if verdict is not None:
            given = value.get("score")
            if _is_score(given) and int(given) != verdict.score:
                verdict.notes.append(f"reported score {given} differs from its stages; the stages count")
            return verdict
    if _is_score(value.get("score")):
        return Verdict(int(value["score"]), max_score=int(value.get("max_score", 4)), source="json")
    return None


def _from_mapping(mapping: dict, stage_logs: dict[str, str], source: str) -> Verdict | None:
    stages: list[StageResult] = []
    notes: list[str] = []
    for label, value in mapping.items():
        passed = _passed(value)
        if passed is None:
            notes.append(f"stage {label!r} has no pass/fail value ({value!r}); counted as failed")
            passed = False
        name = canonical_stage(str(label))
        excerpt = ""
        if isinstance(value, dict):
            excerpt = str(value.get("log") or value.get("message") or "")[:EXCERPT_CHARS]
        stages.append(StageResult(name, str(label), passed, excerpt or stage_logs.get(name, "")))
    if not stages:
        return None
    order = {name: i for i, name in enumerate(STAGES)}
    stages.sort(key=lambda s: order.get(s.name, len(STAGES)))
    return Verdict(
        score=sum(s.passed for s in stages),
        max_score=max(len(stages), 1),
        source=source,
        stages=stages,
        notes=notes,
    )


def _from_number(stdout: str) -> Verdict | None:
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    if lines and lines[-1].isdigit() and int(lines[-1]) <= 4:
        return Verdict(int(lines[-1]), source="number")
    return None
