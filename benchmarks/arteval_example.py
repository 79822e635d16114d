"""ArtEvalBench example timing: the whole flow (agent, evaluator, records, report) for every example run.

    .venv/bin/python benchmarks/arteval_example.py [--repeat 3]

Runs `proctor run` on each of examples/artevalbench/evalrun*.yaml with a fresh store, then once more on
the same store (the rerun must do no work), and prints per run the wall time, the per-artifact scores and
what the rerun processed. The issue's target: the example runs locally in well under a minute on 2 cores.

The last line is `RESULT example_s=<slowest fresh run, seconds> rerun_processed=<items>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples" / "artevalbench").glob("evalrun*.yaml"))


def proctor_run(manifest: Path, store: str) -> tuple[float, dict]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run", str(manifest), "--store", store, "--json", "--quiet"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{manifest.name} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="fresh runs per manifest (the slowest counts)")
    args = parser.parse_args()
    print(f"CPUs available: {len(os.sched_getaffinity(0))}")
    slowest, rerun_processed = 0.0, 0
    for manifest in EXAMPLES:
        times = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as store:
                elapsed, result = proctor_run(manifest, store)
                times.append(elapsed)
                rerun_s, rerun = proctor_run(manifest, store)
        rerun_processed = max(rerun_processed, rerun["counts"]["processed"])
        scores = {
            k.removeprefix("artifact/"): v for k, v in result["scores"].items() if k.startswith("artifact/")
        }
        print(
            f"{manifest.name:32s} fresh {min(times):5.2f}-{max(times):5.2f} s   rerun {rerun_s:5.2f} s "
            f"(processed {rerun['counts']['processed']})   scores {scores}   "
            f"share at expected {result['scores']['share_at_expected']}"
        )
        slowest = max(slowest, *times)
    print(f"RESULT example_s={slowest:.2f} rerun_processed={rerun_processed}")


if __name__ == "__main__":
    main()
