"""HumanEval-V samples evaluated per second: Proctor's oracle against the original harness's way,
same machine, same run, same parallelism (one slot per CPU).

Workload: the HumanEval-V example's programs that finish on their own (correct, wrong and crashing
samples; the ones that hang cost the same 2 s timeout either way and would only dilute the ratio),
repeated to `--samples`.

Two measurements, both printed:

- **evaluation** (the RESULT): what evaluating a sample costs end to end — the pylint gate, then
  running the tests. Baseline: HumanEval-V's `execution_tasks` per sample, i.e. an in-process pylint
  `Run` on the program, then a `multiprocessing.Manager` plus a fresh `Process` that `exec`s it under a
  2 s alarm, in a `ProcessPoolExecutor` whose workers have the original module's imports loaded
  (numpy, pylint). Proctor: the oracle stage's way — per shard, pylint over all its programs in one
  confined run per slot (the fork server has pylint imported and warm), then each program in a
  confined child of the pre-warmed fork server; shards are worked concurrently, as a run's workers do.
- **execution only**: the same without the pylint gate on either side.

Proctor is measured twice: with its default verdict (`harness`: the test script runs in a trusted
process and calls the answer, sandboxed in another, over plain data) and with the original's
single-process verdict (`in-process`, which an answer can forge); the ratio between them is what the
unforgeable verdict costs. Both fork one confined process per sample from the zygote; the trusted side
is a harness worker forked once and reused (`oracle/harness_pool.py`): forking a harness per sample
had cost as much CPU as the sample itself.

Proctor's side runs with its full isolation on (namespaces, read-only filesystem, unprivileged uid,
resource limits); the baseline has none (the original's reliability guard is commented out).

    python benchmarks/oracle_throughput.py [--samples 200] [--shard-size 50]

Last line: `RESULT speedup=<ours/baseline, evaluation>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))

from proctor_jobs.benchmarks.humanevalv import (  # noqa: E402
    PYLINT_PRELOAD,
    candidate_program,
    entry_point,
    run_pylint,
)
from proctor_jobs.benchmarks.humanevalv_extract import extract  # noqa: E402
from proctor_jobs.oracle import Sandbox, SandboxLimits  # noqa: E402
from proctor_jobs.oracle.sandbox import DEFAULT_PRELOAD  # noqa: E402

HANGS_OR_HOSTILE = ("while True", "fork", "socket", "10 * 1024", "_exit", "open(")


@dataclass(frozen=True)
class Sample:
    program: str  # the original's whole program (baseline, pylint, the in-process verdict)
    candidate: str  # the answer alone (the harness verdict runs it in the sandbox)
    test: str
    signature: str


def workload(samples: int) -> list[Sample]:
    example = REPO / "examples" / "humanevalv" / "data"
    lines = (example / "tasks.jsonl").read_text().splitlines()
    tasks = {json.loads(line)["qid"]: json.loads(line) for line in lines}
    chosen = []
    for row in json.loads((example / "predictions_n6.json").read_text()):
        task = tasks[row["qid"]]
        for prediction in row["predictions"]:
            if any(word in prediction for word in HANGS_OR_HOSTILE):
                continue  # same cost on both sides, see the docstring
            signature, test = task["function_signature"], task["test_script"]
            extraction = extract(prediction, signature, test)
            candidate = candidate_program(signature, extraction.completion)
            chosen.append(Sample(extraction.program, candidate, test, signature))
    return [chosen[i % len(chosen)] for i in range(samples)]


# ---- baseline: the original harness's per-sample evaluation, re-implemented for measurement --------


def _baseline_worker_init() -> None:
    # The original's evaluate.py imports these at module level, so its pool workers carry them.
    import numpy  # noqa: F401
    import pylint.lint  # noqa: F401


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _run_in_child(program: str, timeout: float, result) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            exec(program, {})
        result.append("passed")
    except _Timeout:
        result.append("timed out")
    except BaseException as exc:
        result.append(str(exc))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _baseline_pylint(program: str) -> list[str]:
    from pylint.lint import Run
    from pylint.reporters import JSONReporter

    path = Path(tempfile.gettempdir()) / f"baseline-{uuid.uuid4().hex}.py"
    path.write_text(program)
    buffer = io.StringIO()
    try:
        Run([str(path)], reporter=JSONReporter(buffer), exit=False)
    finally:
        path.unlink(missing_ok=True)
    messages = json.loads(buffer.getvalue() or "[]")
    return [
        m["message"]
        for m in messages
        if m["type"] in ("error", "fatal") and m["symbol"] != "function-redefined"
    ]


def _baseline_one(program: str, with_pylint: bool, timeout: float = 2.0) -> bool:
    if with_pylint and _baseline_pylint(program):
        return False
    manager = multiprocessing.Manager()
    result = manager.list()
    process = multiprocessing.Process(target=_run_in_child, args=(program, timeout, result))
    process.start()
    process.join(timeout=timeout + 1)
    if process.is_alive():
        process.kill()
    passed = bool(result) and result[0] == "passed"
    manager.shutdown()
    return passed


def _noop(_: int) -> None:
    return None


def run_baseline(programs: list[str], workers: int, with_pylint: bool) -> tuple[float, int]:
    from functools import partial

    with ProcessPoolExecutor(max_workers=workers, initializer=_baseline_worker_init) as pool:
        list(pool.map(_noop, range(workers * 4)))  # workers started and warm, as ours is
        start = time.perf_counter()
        passed = sum(pool.map(partial(_baseline_one, with_pylint=with_pylint), programs))
    return time.perf_counter() - start, passed


# ---- Proctor: the oracle stage's way ---------------------------------------------------------------


async def run_ours(samples: list[Sample], workers: int, with_pylint: bool, shard_size: int, verdict: str):
    """Shards are worked concurrently, as a run's workers work them, over one pre-warmed sandbox."""
    linter_preload = (*DEFAULT_PRELOAD, *PYLINT_PRELOAD)
    async with (
        Sandbox(concurrency=workers) as sandbox,
        Sandbox(concurrency=workers, preload=linter_preload) as linter,
    ):
        # The servers' start-up is paid once per worker, not per sample.
        await asyncio.gather(sandbox.run_python("pass"), linter.run_python("pass"))
        results = []

        limits = SandboxLimits(wall_seconds=2)

        def run_one(sample: Sample):
            if verdict == "in-process":
                return sandbox.run_python(sample.program, limits)
            entry = entry_point(sample.signature)
            return sandbox.run_test(sample.candidate, sample.test, entry, limits, signature=sample.signature)

        async def shard(part: list[Sample]) -> None:
            rejected: dict[str, list[str]] = {}
            if with_pylint:
                rejected = await run_pylint(linter, {str(i): s.program for i, s in enumerate(part)})
            todo = [s for i, s in enumerate(part) if str(i) not in rejected]
            results.extend(await asyncio.gather(*(run_one(s) for s in todo)))

        start = time.perf_counter()
        parts = [samples[o : o + shard_size] for o in range(0, len(samples), shard_size)]
        await asyncio.gather(*(shard(part) for part in parts))
        elapsed = time.perf_counter() - start
    return elapsed, sum(r.ok for r in results), results[0].isolation if results else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--shard-size", type=int, default=50)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    samples = workload(args.samples)
    programs = [s.program for s in samples]
    print(f"workload: {len(samples)} HumanEval-V example programs, {args.workers} parallel slots")
    ratios = {}
    for label, with_pylint in (("execution only", False), ("evaluation (pylint gate + execution)", True)):
        base_s, base_passed = run_baseline(programs, args.workers, with_pylint)
        base_rate = len(programs) / base_s
        print(f"{label}:")
        print(
            f"  baseline (original's way): {base_s:6.2f} s  {base_rate:7.1f} samples/s  {base_passed} passed"
        )
        for verdict in ("harness", "in-process"):
            ours_s, ours_passed, isolation = asyncio.run(
                run_ours(samples, args.workers, with_pylint, args.shard_size, verdict)
            )
            ours_rate = len(programs) / ours_s
            ratios[with_pylint, verdict] = ours_rate / base_rate
            print(
                f"  proctor, {verdict + ' verdict:':20s} {ours_s:6.2f} s  {ours_rate:7.1f} samples/s  "
                f"{ours_passed} passed  speedup {ratios[with_pylint, verdict]:.2f}x"
            )
            if ours_passed != base_passed:
                print(f"  WARNING: pass counts differ ({ours_passed} vs {base_passed})")
        cost = ratios[with_pylint, "in-process"] / ratios[with_pylint, "harness"]
        print(f"  the harness verdict costs {cost:.2f}x the forgeable in-process one")
    print(f"proctor isolation: {', '.join(isolation)}")
    print(f"RESULT speedup={ratios[True, 'harness']:.2f}")


if __name__ == "__main__":
    main()
