"""pass@k: the unbiased estimator against brute-force enumeration, and HumanEval-V's k choices."""

import itertools
import math

import pytest

from proctor_jobs.scoring.passk import default_ks, mean_pass_at_k, pass_at_k


def brute_force(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    draws = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in draw) for draw in draws) / len(draws)


@pytest.mark.parametrize(
    ("n", "c", "k"), [(6, 0, 3), (6, 2, 3), (6, 4, 3), (6, 6, 1), (20, 3, 10), (5, 1, 1), (7, 5, 2)]
)
def test_matches_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


def test_closed_form():
    assert pass_at_k(6, 2, 3) == pytest.approx(1 - math.comb(4, 3) / math.comb(6, 3))


def test_k_beyond_n_is_refused():
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_mean_over_tasks_in_percent():
    per_task = [[True] * 6, [True, False, False, False, False, False], [False] * 6]
    assert mean_pass_at_k(per_task, 1) == pytest.approx(100 * (1 + 1 / 6 + 0) / 3)


def test_default_ks_follow_the_paper():
    assert default_ks(1) == [1]
    assert default_ks(6) == [1, 3]
    assert default_ks(20) == [1, 10]
