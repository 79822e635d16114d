"""Sandboxed programs per second: Proctor's oracle against the original harness's way, same machine, same run.

Workload: the HumanEval-V example's programs that finish on their own (correct, wrong and crashing
samples; the ones that hang cost the same 2 s timeout either way and would only dilute the ratio),
repeated to `--samples`. Both sides run the same programs with the same parallelism (one slot per CPU).

- baseline: what HumanEval-V's `execution.py` does per sample — a `multiprocessing.Manager` plus a
  fresh `Process` that `exec`s the program under a 2 s alarm, inside a `ProcessPoolExecutor` (the
  original runs no isolation beyond that; its reliability guard is commented out);
- ours: `proctor_jobs.oracle.Sandbox` — a pre-warmed fork server, and per program a confined child
  (namespaces, read-only filesystem, unprivileged uid, resource limits) — the full isolation is on.

    python benchmarks/oracle_throughput.py [--samples 300]

Last line: `RESULT speedup=<ours/baseline>`.
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
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))

from proctor_jobs.benchmarks.humanevalv_extract import extract  # noqa: E402
from proctor_jobs.oracle import Sandbox, SandboxLimits  # noqa: E402


def workload(samples: int) -> list[str]:
    example = REPO / "examples" / "humanevalv" / "data"
    tasks = {
        json.loads(line)["qid"]: json.loads(line)
        for line in (example / "tasks.jsonl").read_text().splitlines()
    }
    programs = []
    for row in json.loads((example / "predictions_n6.json").read_text()):
        task = tasks[row["qid"]]
        for prediction in row["predictions"]:
            if any(
                word in prediction for word in ("while True", "fork", "socket", "10 * 1024", "_exit", "open(")
            ):
                continue  # hangs or hostile: same cost on both sides, see the docstring
            programs.append(extract(prediction, task["function_signature"], task["test_script"]).program)
    return [programs[i % len(programs)] for i in range(samples)]


# ---- baseline: the original harness's per-sample execution, re-implemented for measurement ----


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


def _baseline_one(program: str, timeout: float = 2.0) -> bool:
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


def run_baseline(programs: list[str], workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        passed = sum(pool.map(_baseline_one, programs))
    return time.perf_counter() - start, passed


async def _ours(programs: list[str], workers: int) -> tuple[float, int, list[str]]:
    async with Sandbox(concurrency=workers) as sandbox:
        await sandbox.run_python("pass")  # the server's start-up is paid once per worker, not per sample
        start = time.perf_counter()
        results = await asyncio.gather(
            *(sandbox.run_python(p, SandboxLimits(wall_seconds=2)) for p in programs)
        )
        elapsed = time.perf_counter() - start
    return elapsed, sum(r.ok for r in results), results[0].isolation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    programs = workload(args.samples)
    print(f"workload: {len(programs)} HumanEval-V example programs, {args.workers} parallel slots")
    base_s, base_passed = run_baseline(programs, args.workers)
    base_rate = len(programs) / base_s
    print(
        f"baseline (Manager + Process per sample): {base_s:.2f} s, {base_rate:.1f} programs/s, "
        f"{base_passed} passed"
    )
    ours_s, ours_passed, isolation = asyncio.run(_ours(programs, args.workers))
    ours_rate = len(programs) / ours_s
    print(
        f"proctor sandbox (fork server, confined): {ours_s:.2f} s, {ours_rate:.1f} programs/s, "
        f"{ours_passed} passed"
    )
    print(f"isolation: {', '.join(isolation)}")
    if ours_passed != base_passed:
        print(f"WARNING: pass counts differ ({ours_passed} vs {base_passed})")
    print(f"RESULT speedup={ours_rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
