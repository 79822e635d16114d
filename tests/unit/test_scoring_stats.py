"""Our statistics against scipy (a cross-check only: the product never imports scipy) and by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from proctor_jobs.scoring import stats as S


@pytest.fixture(params=[7, 60, 400])
def ratings(request):
    rng = np.random.default_rng(request.param)
    human = rng.integers(0, 6, request.param).astype(float)  # many ties, like 0-5 ratings
    metric = np.round(human + rng.normal(0, 1.2, request.param), 1)
    return human, metric


def test_correlations_match_scipy(ratings):
    h, m = ratings
    assert S.pearson(h, m) == pytest.approx(scipy.stats.pearsonr(h, m)[0], abs=1e-12)
    assert S.spearman(h, m) == pytest.approx(scipy.stats.spearmanr(h, m)[0], abs=1e-12)
    assert S.kendall_tau_b(h, m) == pytest.approx(scipy.stats.kendalltau(h, m)[0], abs=1e-12)


def test_average_ranks_for_ties():
    assert list(S.rank_average([10, 20, 20, 30])) == [1.0, 2.5, 2.5, 4.0]


def brute_pairwise(h, m):
    agree = total = 0.0
    for i, j in itertools.combinations(range(len(h)), 2):
        if h[i] == h[j]:
            continue
        total += 1
        product = (h[i] - h[j]) * (m[i] - m[j])
        agree += 1.0 if product > 0 else 0.5 if product == 0 else 0.0
    return agree / total


def test_pairwise_agreement_by_hand(ratings):
    h, m = ratings
    assert S.pairwise_agreement(h, m) == pytest.approx(brute_pairwise(h, m), abs=1e-12)


def test_perfect_and_reversed_orderings():
    h = [1, 2, 3, 4]
    assert S.pairwise_agreement(h, [10, 20, 30, 40]) == 1.0
    assert S.pairwise_agreement(h, [4, 3, 2, 1]) == 0.0
    assert S.pairwise_agreement(h, [5, 5, 5, 5]) == 0.5
    assert S.kendall_tau_b(h, [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_undefined_statistics_are_nan():
    assert math.isnan(S.pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(S.kendall_tau_b([1], [2]))
    assert math.isnan(S.pairwise_agreement([2, 2, 2], [1, 2, 3]))


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(5)
    h = rng.integers(0, 6, 200).astype(float)
    m = np.round(h + rng.normal(0, 1.2, 200), 1)
    first = S.agreement_bootstrap(h, m, iterations=300, seed=7)
    assert first == S.agreement_bootstrap(h, m, iterations=300, seed=7)
    assert first != S.agreement_bootstrap(h, m, iterations=300, seed=8)
    point = S.agreement(h, m)
    for name, (low, high) in first.items():
        assert low <= point[name] <= high, name


def test_matrix_bootstrap_equals_recomputing_each_resample():
    rng = np.random.default_rng(3)
    h = rng.integers(0, 6, 80).astype(float)
    m = np.round(h + rng.normal(0, 1, 80))
    fast = S.agreement_bootstrap(h, m, iterations=200, seed=11)
    direct_tau = S.bootstrap_ci(S.kendall_tau_b, h, m, iterations=200, seed=11)
    direct_pair = S.bootstrap_ci(S.pairwise_agreement, h, m, iterations=200, seed=11)
    assert fast["kendall_tau_b"] == pytest.approx(direct_tau, abs=1e-6)
    assert fast["pairwise_agreement"] == pytest.approx(direct_pair, abs=1e-6)


def test_paired_delta_interval():
    a = [50.0] * 40 + [60.0] * 40
    b = [x + 5 for x in a]
    result = S.paired_bootstrap_delta(a, b, iterations=500)
    assert result["delta"] == pytest.approx(5.0)
    assert result["ci_low"] == pytest.approx(5.0) and result["ci_high"] == pytest.approx(5.0)
    noisy = S.paired_bootstrap_delta(a, [x + (1 if i % 2 else -1) for i, x in enumerate(a)], iterations=500)
    assert noisy["ci_low"] < 0 < noisy["ci_high"]
    with pytest.raises(ValueError):
        S.paired_bootstrap_delta([1.0], [1.0, 2.0])
