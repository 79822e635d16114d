"""pass@k with the unbiased estimator of Chen et al. (2021), as HumanEval-V reports it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) passes:
    1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if k <= 0 or k > n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n (n = {n})")
    if n - c < k:
        return 1.0
    ratio = 1.0
    for i in range(n - c + 1, n + 1):
        ratio *= 1.0 - k / i
    return 1.0 - ratio


def mean_pass_at_k(per_task: Iterable[Sequence[bool]], k: int) -> float:
    """pass@k averaged over tasks, in percent (unrounded), computed as the original does:
    `float(np.mean(values)) * 100` — numpy's pairwise sum, then the scaling — so that rounding to
    one decimal lands on the same side of a tie (pass@1 for 0,0,0,0,1,1,1,6 correct of 6: 18.7,
    where a plain `100 * sum / len` gives 18.75 and 18.8)."""
    import numpy as np

    values = [pass_at_k(len(samples), sum(map(bool, samples)), k) for samples in per_task]
    if not values:
        return 0.0
    return float(np.mean(np.array(values))) * 100


def default_ks(n: int) -> list[int]:
    """The k HumanEval-V reports for a sample count: 1 for n=1, 3 for n=6, 10 for n=20."""
    return {1: [1], 6: [1, 3], 20: [1, 10]}.get(n, [1] if n < 3 else [1, min(n, 3)])
