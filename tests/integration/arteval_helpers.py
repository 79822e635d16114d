"""Helpers for the ArtEvalBench integration tests: make artifacts, write EvalRuns, run them locally."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml

from proctor_jobs.arteval.archive import archive_ref_for, pack_directory
from proctor_jobs.records import ItemRecord

REPO = Path(__file__).resolve().parents[2]
SCRIPTED_AGENT = REPO / "examples" / "artevalbench" / "agent" / "scripted_agent.py"


def make_artifact(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def task(artifact_id: str, folder: Path, **fields: Any) -> dict[str, Any]:
    """A task in the original format with the folder packed inline."""
    record = {
        "artifact_id": artifact_id,
        "artifact_dir": folder.name,
        "artifact_readme": f"{folder.name}/README.md",
        "evaluator": f"{folder.name}/_agent_eval/main.py",
        "expected_score": 4,
        "env": "local",
        "artifact_archive": archive_ref_for(pack_directory(folder)),
    }
    record.update(fields)
    return record


def write_run(directory: Path, name: str, tasks: list[dict], spec: dict[str, Any]) -> Path:
    body = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "metadata": {"name": name},
        "spec": {"benchmark": {"format": "artevalbench", "source": {"inline": tasks}}, **spec},
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def run_local(manifest: Path, store: Path, workers: int = 2):
    """`proctor run` in-process: the result and the records by item id."""
    from proctor.local import execute, prepare

    local = prepare(manifest, str(store))
    result = execute(local, workers)
    from proctor.results import collect_records

    records: dict[str, ItemRecord] = collect_records(local.store, local.plan).get("oracle", {})
    return result, records, local


def agent_spec(files: dict[str, str], command: list[str], **extra: Any) -> dict[str, Any]:
    return {"command": command, "files": files, **extra}


def scripted_agent(*args: str, timeout: float = 60) -> dict[str, Any]:
    return agent_spec(
        {"scripted_agent.py": SCRIPTED_AGENT.read_text()},
        ["python3", "{agentDir}/scripted_agent.py", "{readme}", *args],
        timeoutSeconds=timeout,
    )


def report_line(text: str, prefix: str = "REPORT ") -> dict[str, Any]:
    line = next(ln for ln in text.splitlines() if ln.startswith(prefix))
    return json.loads(line[len(prefix) :])
