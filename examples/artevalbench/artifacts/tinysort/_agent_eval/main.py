#!/usr/bin/env python3
"""TinySort's four-stage evaluator: environment setup, build, benchmark preparation, experiment runs.

It follows the original ArtEvalBench evaluators' conventions: a PASS/FAIL line per stage on stderr, the
`Agent scores: {...}` mapping at the end, and the score (0-4) as the exit status. Run from the artifact
root: `python _agent_eval/main.py`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

EVAL = Path(__file__).resolve().parent
ROOT = EVAL.parent
REFS = EVAL / "refs"


def regular_file(relative: str) -> Path:
    """A file the agent produced: it must be a real file inside the artifact, not a link to elsewhere."""
    path = ROOT / relative
    if path.is_symlink():
        raise ValueError(f"{relative} is a symbolic link")
    if not path.is_file():
        raise ValueError(f"{relative} does not exist")
    if not path.resolve().is_relative_to(ROOT) or path.resolve().is_relative_to(EVAL):
        raise ValueError(f"{relative} is outside the artifact's results")
    return path


def check_env() -> list[str]:
    errors = []
    try:
        ready = json.loads(regular_file("env/ready.json").read_text())
        major, minor = (int(x) for x in str(ready["python"]).split(".")[:2])
        if (major, minor) < (3, 9):
            errors.append(f"python: {ready['python']} is older than 3.9")
    except (ValueError, KeyError, OSError) as exc:
        errors.append(f"env/ready.json: {exc}")
    return errors


def check_build() -> list[str]:
    try:
        pyz = regular_file("bin/tinysort.pyz")
        with zipfile.ZipFile(pyz) as archive:
            if "__main__.py" not in archive.namelist():
                return ["bin/tinysort.pyz: no __main__.py"]
        out = subprocess.run(
            [sys.executable, str(pyz), "--version"], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
    except (ValueError, OSError, zipfile.BadZipFile, subprocess.TimeoutExpired) as exc:
        return [f"bin/tinysort.pyz: {exc}"]
    if out.stdout.strip() != "tinysort 1.0.0":
        return [f"--version printed {out.stdout.strip()!r}, expected 'tinysort 1.0.0'"]
    return []


def check_dataset() -> list[str]:
    expected = (REFS / "dataset.sha256").read_text().split()[0]
    try:
        digest = hashlib.sha256(regular_file("data/arrays.txt").read_bytes()).hexdigest()
    except (ValueError, OSError) as exc:
        return [f"data/arrays.txt: {exc}"]
    return [] if digest == expected else [f"data/arrays.txt: sha256 {digest}, expected {expected}"]


def check_experiment() -> list[str]:
    reference = json.loads((REFS / "table1.ref.json").read_text())
    try:
        text = regular_file("results/table1.md").read_text()
    except (ValueError, OSError) as exc:
        return [f"results/table1.md: {exc}"]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in reference["rows"]:
            try:
                rows[cells[0]] = [float(c) for c in cells[1:]]
            except ValueError:
                return [f"results/table1.md: row {cells[0]!r} has non-numeric cells"]
    errors = []
    for name, expected in reference["rows"].items():
        got = rows.get(name)
        if got is None:
            errors.append(f"results/table1.md: row {name!r} is missing")
        elif any(abs(a - b) > 0.05 for a, b in zip(got, expected, strict=False)):
            errors.append(f"results/table1.md: row {name!r} is {got}, the paper reports {expected}")
    return errors


CHECKS = (
    ("OracleEnvSetup", "EnvironmentSetup", check_env),
    ("OracleArtifactBuild", "ArtifactBuild", check_build),
    ("OracleBenchmarkPrep", "BenchmarkPrep", check_dataset),
    ("OracleExperimentRuns", "ExperimentRuns", check_experiment),
)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    logger = logging.getLogger(os.environ.get("EVAL_LOGGER_NAME", "TINYSORT-AGENT-EVALUATOR"))
    results: dict[str, int] = {}
    for key, label, check in CHECKS:
        errors = check()
        logger.info("%s: %s", label, "FAIL" if errors else "PASS")
        for error in errors:
            logger.error(" - %s", error)
        results[key] = 0 if errors else 1
    logger.info("Agent scores: %s", results)
    return sum(results.values())


if __name__ == "__main__":
    raise SystemExit(main())
