"""Check an ArtEvalBench task list and attach each artifact's files, ready for Proctor.

    python -m proctor_jobs.arteval.pack data/benchmark/arteval_tasks.jsonl --check
    python -m proctor_jobs.arteval.pack data/benchmark/arteval_tasks.jsonl --out tasks.jsonl
    python -m proctor_jobs.arteval.pack data/benchmark/arteval_tasks.jsonl --store s3://bucket/proctor \
        --out tasks.jsonl

`artifact_dir` (and the README and evaluator paths) are relative to the task list's folder, as in the
original repository (`--root` names another folder). Each artifact folder becomes a deterministic
tar.gz: inline in the task (`{"base64": ...}`, fine for small artifacts and ConfigMaps), or uploaded
once to `artifacts/<sha256>/artifact.tar.gz` in the given store and referenced as `store:<key>` —
the run's store, so a worker pod finds it with the credentials it already has.

Every problem is reported with its line number; the exit status is 1 when there are errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from proctor_jobs.arteval.archive import ArchiveError, archive_ref_for, pack_directory
from proctor_jobs.arteval.tasks import Problem, parse_task_list
from proctor_jobs.encoding import UTF8_HINT, undecodable
from proctor_jobs.layout import artifact_prefix


def read_lines(path: Path) -> tuple[list[Any], list[int], list[str]]:
    """Records, the line number of each, and JSON errors by line."""
    records, lines, errors = [], [], []
    raw, offset = path.read_bytes(), 0
    for number, line in enumerate(raw.split(b"\n"), 1):
        start, offset = offset, offset + len(line) + 1
        if not line.strip():
            continue
        problem = undecodable(line, start)
        if problem:
            errors.append(f"{path}:{number}: {problem[1]}; {UTF8_HINT}")
            continue
        text = line.decode()
        try:
            records.append(json.loads(text))
            lines.append(number)
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{number}: not valid JSON: {exc.msg}")
    return records, lines, errors


def describe(problem: Problem, lines: list[int], path: Path) -> str:
    who = f" ({problem.artifact})" if problem.artifact else ""
    clash = f" (line {lines[problem.first]} has it too)" if problem.first is not None else ""
    return f"{path}:{lines[problem.record]}{who}: field {problem.field!r}: {problem.message}{clash}"


def pack_records(records: list[dict[str, Any]], root: Path, store: Any = None) -> list[dict[str, Any]]:
    """The records with `artifact_archive` set from each record's `artifact_dir` under `root`."""
    out = []
    for record in records:
        record = dict(record)
        folder = root / str(record.get("artifact_dir") or "")
        data = pack_directory(folder)
        if store is None:
            record["artifact_archive"] = archive_ref_for(data)
        else:
            ref = archive_ref_for(data, "store:")
            key = f"{artifact_prefix(ref['sha256'])}/artifact.tar.gz"
            if not store.exists(key):
                store.put_bytes(key, data, "application/gzip")
            record["artifact_archive"] = {"uri": f"store:{key}", "sha256": ref["sha256"]}
        out.append(record)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m proctor_jobs.arteval.pack", description=__doc__.split("\n")[0]
    )
    parser.add_argument("tasks", type=Path, help="the original task list (JSON Lines)")
    parser.add_argument("--root", type=Path, help="folder artifact_dir is relative to (default: the list's)")
    parser.add_argument("--check", action="store_true", help="only report problems, pack nothing")
    parser.add_argument("--store", help="upload archives to this store (directory or s3://bucket/prefix)")
    parser.add_argument("--out", type=Path, help="write the packed records here (default: stdout)")
    args = parser.parse_args(argv)
    records, lines, json_errors = read_lines(args.tasks)
    result = parse_task_list(records)
    for error in json_errors:
        print(f"error: {error}", file=sys.stderr)
    for problem in result.errors:
        print(f"error: {describe(problem, lines, args.tasks)}", file=sys.stderr)
    for problem in result.notes:
        print(f"note: {describe(problem, lines, args.tasks)}", file=sys.stderr)
    if json_errors or result.errors:
        return 1
    if args.check:
        print(f"{args.tasks}: {len(records)} task(s), no errors", file=sys.stderr)
        return 0
    store = None
    if args.store:
        from proctor_jobs.store import open_store

        store = open_store(args.store)
    root = args.root or args.tasks.parent
    try:
        packed = pack_records(records, root, store)
    except ArchiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in packed)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
