"""Judge agreement's cost: the bootstrap of Pearson, Spearman and Kendall between two judges.

    .venv/bin/python benchmarks/judge_agreement.py [--items 500 1000 2000] [--iterations 1000]

A run with several judges computes, per pair of judges (and per group), the agreement statistics
with a percentile bootstrap (`scoring/judges.py: agreement_with_ci`, `scoring/stats.py:
agreement_bootstrap`). The pair statistics of a resample are pair sums w'Mw over the original
n x n sign matrices; Proctor computes them for a block of resamples in one matrix product. The
baseline, measured in the same run, is one matrix-vector product per resample (how it was done
before). Both give the same intervals; the script checks that and prints the seconds of each.

The last line is `RESULT speedup=<baseline seconds / Proctor seconds>` at the largest size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from proctor_jobs.scoring import stats as S


def baseline(h: np.ndarray, m: np.ndarray, iterations: int, seed: int) -> np.ndarray:
    """Kendall's tau-b of every resample, one matrix-vector product per resample."""
    n = h.size
    rng = np.random.default_rng(seed)
    dx, dy = np.sign(h[:, None] - h[None, :]), np.sign(m[:, None] - m[None, :])
    product = (dx * dy).astype(np.float32)
    zx, zy = (dx == 0).astype(np.float32), (dy == 0).astype(np.float32)
    zxy = zx * zy
    out = np.empty(iterations)
    for i in range(iterations):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float32)

        def quad(matrix: np.ndarray, w: np.ndarray = w) -> float:
            return float(w @ (matrix @ w))

        out[i], _ = S._from_counts(
            n, quad(product) / 2, (quad(zx) - n) / 2, (quad(zy) - n) / 2, (quad(zxy) - n) / 2
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    speedup = 0.0
    for n in args.items:
        h = rng.integers(0, 101, n).astype(float)
        m = np.clip(h + rng.normal(0, 12, n), 0, 100).round()
        start = time.perf_counter()
        proctor = S.agreement_bootstrap(h, m, args.iterations, seed=42)
        proctor_s = time.perf_counter() - start
        start = time.perf_counter()
        taus = baseline(h, m, args.iterations, seed=42)
        baseline_s = time.perf_counter() - start
        tail = 2.5
        low, high = (float(v) for v in np.percentile(taus[~np.isnan(taus)], [tail, 100 - tail]))
        same = np.allclose(proctor["kendall_tau_b"], (low, high), atol=1e-9)
        speedup = baseline_s / proctor_s
        print(
            f"n={n:5d} iterations={args.iterations}: proctor {proctor_s:6.2f} s (all four statistics), "
            f"baseline {baseline_s:6.2f} s (Kendall only), same interval: {same}"
        )
    print(f"RESULT speedup={speedup:.1f}")


if __name__ == "__main__":
    main()
