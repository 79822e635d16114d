"""Import an ArtEvalBench task list with the original harness's rules.

One task per record (a JSONL line in the original):

    artifact_id      unique name of the artifact                                  required
    artifact_dir     folder of the artifact, relative to the task list            required unless artifact_url
    artifact_readme  the README the agent follows, relative to the task list      required
    artifact_url     where the artifact comes from (provenance)                   optional
    evaluator        `<path>.py` (run as `python <path>` from the artifact root)
                     or a shell command run from the artifact root                required
    expected_score   the score (0-4) a faithful reproduction reaches             required
    env              "local" or a container image                                 optional
    docker_env       the older spelling of an image env (also `docer_env`, a misspelling the upstream list
                     carries and the original accepts)
    run_on_host      the older spelling of env: "local"
    timeout_sec / timeout_ms / timeout
                     the artifact's time budget; `timeout` is seconds below 86,400 and milliseconds from
                     there on (the original's rule); default 96 h
    gpu, interactive, keep_container, enable_skill, enable_subagent           optional booleans
    artifact_archive Proctor's addition: where the artifact's files are (see `archive.ArchiveRef`)

Problems are collected for every record before anything is rejected, so one import reports them all:
errors (a missing or mistyped field, an unknown field, contradictory fields) reject the list; notes
(a legacy spelling, an option Proctor does not honour) travel with the task and show up as run warnings.
"""

from __future__ import annotations

import difflib
import posixpath
from dataclasses import dataclass, field
from typing import Any

from proctor_jobs.arteval.archive import ArchiveError, ArchiveRef, archive_members

#: The original's default time budget (96 h) and its seconds-or-milliseconds threshold for `timeout`.
DEFAULT_TIMEOUT_S = 345_600
LEGACY_TIMEOUT_THRESHOLD = 86_400
#: The image the original harness uses when a task names none.
DEFAULT_IMAGE = "bastoica/ae-agent-ubuntu24.04:latest"
MAX_SCORE = 4

REQUIRED = ("artifact_id", "artifact_readme", "evaluator", "expected_score")
KNOWN = frozenset(
    {
        "artifact_id",
        "artifact_dir",
        "artifact_readme",
        "artifact_url",
        "evaluator",
        "expected_score",
        "env",
        "docker_env",
        "docer_env",
        "run_on_host",
        "timeout",
        "timeout_sec",
        "timeout_ms",
        "gpu",
        "interactive",
        "keep_container",
        "enable_skill",
        "enable_subagent",
        "artifact_archive",
    }
)
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


@dataclass
class Problem:
    record: int
    field: str
    message: str
    artifact: str | None = None
    first: int | None = None  # the earlier record a duplicate clashes with

    def __str__(self) -> str:
        who = f" ({self.artifact})" if self.artifact else ""
        clash = f" (record {self.first + 1} has it too)" if self.first is not None else ""
        return f"record {self.record + 1}{who}: field {self.field!r}: {self.message}{clash}"


@dataclass
class ImportResult:
    tasks: list[dict[str, Any]] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)


def parse_task_list(records: list[Any]) -> ImportResult:
    """Normalised tasks plus every error and note, each naming its record (0-based index) and field."""
    result = ImportResult()
    seen: dict[str, int] = {}
    for index, row in enumerate(records):
        if not isinstance(row, dict):
            result.errors.append(Problem(index, "<record>", f"expected an object, got {type(row).__name__}"))
            continue
        errors: list[Problem] = []
        notes: list[Problem] = []
        task = _parse_one(index, row, errors, notes)
        artifact = task.get("artifact_id")
        for problem in (*errors, *notes):
            problem.artifact = problem.artifact or artifact
        if artifact and artifact in seen:
            errors.append(Problem(index, "artifact_id", "duplicate", artifact, first=seen[artifact]))
        elif artifact:
            seen[artifact] = index
        result.errors.extend(errors)
        result.notes.extend(notes)
        if not errors:
            task["notes"] = [f"{p.field}: {p.message}" for p in notes]
            result.tasks.append(task)
    return result


def _parse_one(index: int, row: dict[str, Any], errors: list[Problem], notes: list[Problem]) -> dict:
    def error(name: str, message: str) -> None:
        errors.append(Problem(index, name, message))

    def note(name: str, message: str) -> None:
        notes.append(Problem(index, name, message))

    for name in row:
        if name not in KNOWN:
            close = difflib.get_close_matches(name, sorted(KNOWN), n=1, cutoff=0.75)
            error(name, "unknown field" + (f" (did you mean {close[0]!r}?)" if close else ""))
    for name in REQUIRED:
        if name not in row or row[name] is None:
            error(name, "missing")

    task: dict[str, Any] = {}
    artifact_id = _string(row, "artifact_id", error)
    if artifact_id is not None:
        task["artifact_id"] = artifact_id
    artifact_dir = _string(row, "artifact_dir", error, required=False)
    url = _string(row, "artifact_url", error, required=False)
    if artifact_dir is None and url is None and "artifact_dir" not in row:
        error("artifact_dir", "missing (and no artifact_url): the task names no artifact")
    if artifact_dir is not None:
        artifact_dir = _relative_path(artifact_dir, "artifact_dir", error)
    task["artifact_dir"] = artifact_dir
    task["artifact_url"] = url

    readme = _string(row, "artifact_readme", error)
    if readme is not None:
        readme = _relative_path(readme, "artifact_readme", error)
        task["readme"] = _under_artifact(readme, artifact_dir) if readme else None

    evaluator = _string(row, "evaluator", error)
    if evaluator is not None:
        task["evaluator"] = _evaluator(evaluator, artifact_dir, error, note)

    if "expected_score" in row and row["expected_score"] is not None:
        score = row["expected_score"]
        if isinstance(score, bool) or not isinstance(score, int):
            error("expected_score", f"expected an integer 0-{MAX_SCORE}, got {score!r}")
        elif not 0 <= score <= MAX_SCORE:
            error("expected_score", f"expected an integer 0-{MAX_SCORE}, got {score}")
        else:
            task["expected_score"] = score

    task["env"] = _environment(row, error, note)
    timeout_s, source = resolve_timeout(row, error)
    task["timeout_s"] = timeout_s
    task["timeout_source"] = source
    for flag in ("gpu", "interactive", "keep_container", "enable_skill", "enable_subagent"):
        task[flag] = _boolean(row, flag, error)
    if task["interactive"]:
        note(
            "interactive",
            "ignored: Proctor runs agents without a terminal, as the original's batch mode does",
        )

    archive = row.get("artifact_archive")
    task["archive"] = None
    if archive is not None:
        try:
            ref = ArchiveRef.parse(archive)
            task["archive"] = ref.to_dict()
        except ArchiveError as exc:
            error("artifact_archive", str(exc))
        else:
            _check_inline_archive(ref, task, error, note)
    elif "artifact_archive" not in row:
        note(
            "artifact_archive",
            "no archive: the artifact's files are not part of the task, so it cannot run until they are "
            "packed (python -m proctor_jobs.arteval.pack)",
        )
    return task


def _string(row: dict, name: str, error, required: bool = True) -> str | None:
    if name not in row or row[name] is None:
        return None
    value = row[name]
    if not isinstance(value, str):
        error(name, f"expected a string, got {type(value).__name__}")
        return None
    if not value.strip():
        error(name, "empty")
        return None
    return value.strip()


def _relative_path(path: str, name: str, error) -> str | None:
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal == ".." or normal.startswith("../"):
        error(name, f"{path!r} must be a relative path inside the benchmark's data folder")
        return None
    return normal


def _under_artifact(path: str, artifact_dir: str | None) -> str:
    """Task paths are relative to the task list; Proctor's are relative to the artifact root.

    The original's lists write `<artifact_dir>/<path>` (its harness copies `artifact_dir` to /repo and
    runs from there), so that prefix is dropped. A path without it is taken as already relative to the root.
    """
    if artifact_dir and artifact_dir != "." and path.startswith(artifact_dir.rstrip("/") + "/"):
        return path[len(artifact_dir.rstrip("/")) + 1 :]
    return path


def _evaluator(value: str, artifact_dir: str | None, error, note) -> dict[str, str] | None:
    """`<file>.py` (one word) runs as `python <file>`, as the original's fix d9af6f1 does; else a command."""
    if value.endswith(".py") and not any(c.isspace() for c in value):
        path = _relative_path(value, "evaluator", error)
        if path is None:
            return None
        path = _under_artifact(path, artifact_dir)
        if "_agent_eval" not in path.split("/"):
            note(
                "evaluator", f"{path} is outside an _agent_eval/ folder, so the agent can read and change it"
            )
        return {"kind": "python", "path": path}
    return {"kind": "shell", "command": value}


def _environment(row: dict, error, note) -> str:
    """ "local" or an image name, from env, docker_env/docer_env and run_on_host; conflicts are errors."""
    values: dict[str, str] = {}
    for name in ("env", "docker_env", "docer_env"):
        if name in row and row[name] is not None:
            if not isinstance(row[name], str) or not row[name].strip():
                error(name, 'expected a non-empty string ("local" or a container image)')
            else:
                values[name] = row[name].strip()
    for name in ("docker_env", "docer_env"):
        if name in values:
            spelled = (
                "a misspelling of docker_env, accepted as the original does" if name == "docer_env" else ""
            )
            note(name, f"older spelling of env{'; ' + spelled if spelled else ''}")
            if values[name].lower() == "local":
                error(name, "names an image; use env: local for running on the host")
    on_host = _boolean(row, "run_on_host", error) if "run_on_host" in row else None
    if on_host is not None:
        note("run_on_host", "older spelling of env: local")
    images = {v for k, v in values.items() if k != "env" or v.lower() != "local"}
    env_local = values.get("env", "").lower() == "local"
    if len(images) > 1:
        named = ", ".join(f"{k}={v!r}" for k, v in values.items())
        error("env", f"contradictory environments: {named}")
    if env_local and (values.keys() - {"env"}):
        error("env", f"env is 'local' but {', '.join(sorted(values.keys() - {'env'}))} names an image")
    if on_host and images and not env_local:
        error("run_on_host", f"run_on_host is true but the task names the image {sorted(images)[0]!r}")
    if on_host is False and env_local:
        error("run_on_host", "run_on_host is false but env is 'local'")
    if env_local or (on_host and not images):
        return "local"
    if images:
        return sorted(images)[0]
    note("env", f"no environment given: {DEFAULT_IMAGE}, the original's default")
    return DEFAULT_IMAGE


def resolve_timeout(row: dict, error) -> tuple[float, str]:
    """The budget in seconds and the field it came from, with the original's precedence and units.

    `timeout_sec` (seconds) wins over `timeout_ms` (milliseconds), which wins over the legacy `timeout`
    (seconds when below 86,400, milliseconds otherwise). The original silently ignores the lower-precedence
    fields; here fields that disagree are an error, since one of them is surely a mistake.
    """
    given: dict[str, float] = {}
    for name, scale in (("timeout_sec", 1.0), ("timeout_ms", 0.001), ("timeout", None)):
        if name not in row or row[name] is None:
            continue
        value = row[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            error(name, f"expected a number, got {value!r}")
            continue
        if value <= 0:
            error(name, f"must be positive, got {value}")
            continue
        if scale is None:
            scale = 1.0 if value < LEGACY_TIMEOUT_THRESHOLD else 0.001
        given[name] = value * scale
    if len(set(round(v, 3) for v in given.values())) > 1:
        described = ", ".join(f"{k} = {v:g} s" for k, v in given.items())
        error("timeout", f"contradictory timeouts: {described}")
    for name in ("timeout_sec", "timeout_ms", "timeout"):
        if name in given:
            return given[name], name
    return float(DEFAULT_TIMEOUT_S), "default"


def _boolean(row: dict, name: str, error) -> bool:
    """Booleans as the original reads them: true/false, or "true", "1", "yes" (and their negatives)."""
    value = row.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    error(name, f"expected true or false, got {value!r}")
    return False


def _check_inline_archive(ref: ArchiveRef, task: dict, error, note) -> None:
    """An archive given inline can be checked now: do the README and the evaluator exist in it?

    A missing README or evaluator is a note, not an error: the artifact is then recorded with that
    outcome and the rest of the list still runs."""
    if ref.base64 is None:
        return
    try:
        members = archive_members(ref.inline_bytes())
    except ArchiveError as exc:
        error("artifact_archive", str(exc))
        return
    readme = task.get("readme")
    if readme and readme not in members:
        note("artifact_readme", f"{readme} is not in the artifact archive")
    evaluator = task.get("evaluator") or {}
    if evaluator.get("kind") == "python" and evaluator["path"] not in members:
        note("evaluator", f"{evaluator['path']} is not in the artifact archive; the artifact will score 0")
