"""Seed statistics agree with scipy.stats (and statsmodels, values noted) on known inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from harness.stats import (
    Difference,
    SeedsNeeded,
    describe,
    holm,
    power_seeds,
    seeds_needed,
    split_finite,
    welch,
    within,
)


@pytest.mark.parametrize("values", [[0.81, 0.83, 0.80], [0.5, 0.52], [0.71, 0.70, 0.74, 0.69, 0.73]])
def test_matches_scipy(values):
    summary = describe(values)
    n, mean, std = len(values), np.mean(values), np.std(values, ddof=1)
    low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=stats.sem(values))
    pi_low, pi_high = stats.t.interval(0.95, n - 1, loc=mean, scale=std * math.sqrt(1 + 1 / n))
    assert summary.n == n
    assert summary.mean == pytest.approx(mean)
    assert summary.std == pytest.approx(std)
    assert (summary.ci_low, summary.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert (summary.pi_low, summary.pi_high) == (pytest.approx(pi_low), pytest.approx(pi_high))
    assert (summary.minimum, summary.maximum) == (min(values), max(values))


def test_prediction_interval_of_two_values_by_hand():
    # n = 2: t(0.975, 1) = 12.706; s = 0.01 * √2; PI half-width = t · s · √1.5.
    summary = describe([0.50, 0.52])
    half = 12.706204736174707 * math.sqrt(2) * 0.01 * math.sqrt(1.5)
    assert summary.pi_low == pytest.approx(0.51 - half) and summary.pi_high == pytest.approx(0.51 + half)
    assert summary.pi_high - summary.pi_low == pytest.approx(0.4401, abs=1e-4)


def test_one_value_has_no_spread():
    summary = describe([0.8])
    assert summary.n == 1 and summary.mean == 0.8
    assert summary.std is None and summary.ci_low is None and summary.pi_low is None


def test_empty():
    assert describe([]).n == 0 and describe([]).mean is None


def test_identical_values_have_zero_width_intervals():
    summary = describe([0.7, 0.7, 0.7])
    assert summary.std == 0
    assert summary.ci_low == summary.ci_high == summary.pi_low == summary.pi_high == summary.mean


def test_non_finite_values_are_failed_seeds_not_values():
    assert split_finite([0.5, float("nan"), 0.6, float("inf"), -float("inf")]) == ([0.5, 0.6], 3)
    with pytest.raises(ValueError, match="finite values only"):
        describe([0.5, float("nan")])


def test_within():
    assert within(0.5, 0.4, 0.6) is True and within(0.7, 0.4, 0.6) is False
    assert within(None, 0.4, 0.6) is None and within(0.5, None, None) is None


@pytest.mark.parametrize("n", [3, 10])
def test_claim_check_false_alarm_rate_is_five_percent(n):
    """A claim drawn from the same distribution as our n seeds lands outside our 95% prediction
    interval 5% of the time whatever n is; outside the CI of the mean 16% (n=3) and 51% (n=10)."""
    trials = 20_000
    rng = np.random.default_rng(16 + n)
    seeds = rng.normal(0.7, 0.02, size=(trials, n))
    claims = rng.normal(0.7, 0.02, size=trials)
    outside_pi = outside_ci = 0
    for values, claim in zip(seeds.tolist(), claims.tolist(), strict=True):
        summary = describe(values)
        outside_pi += not within(claim, summary.pi_low, summary.pi_high)
        outside_ci += not within(claim, summary.ci_low, summary.ci_high)
    assert 0.035 <= outside_pi / trials <= 0.065
    expected_ci = {3: 0.164, 10: 0.51}[n]  # P(|t(n-1)| > t_crit / √(n+1)): the old, wrong check
    assert outside_ci / trials == pytest.approx(expected_ci, abs=0.02)


WELCH_CASES = [
    ([0.80, 0.82, 0.81], [0.79, 0.82, 0.80]),  # n = 3 each
    ([0.50, 0.52], [0.40, 0.45, 0.43, 0.41, 0.47]),  # n = 2 against unequal n = 5
    ([0.10, 0.10, 0.10], [0.20, 0.25, 0.22]),  # one side identical (zero variance)
    ([0.61, 0.64, 0.60, 0.66], [0.10, 0.10]),  # the other side identical, unequal n
]


@pytest.mark.parametrize(("a", "b"), WELCH_CASES)
def test_welch_matches_scipy(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision warning on a constant side
        expected = stats.ttest_ind(a, b, equal_var=False)
    interval = expected.confidence_interval(0.95)
    difference = welch(a, b)
    assert difference.n_a == len(a) and difference.n_b == len(b)
    assert difference.delta == pytest.approx(np.mean(a) - np.mean(b))
    assert difference.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert difference.df == pytest.approx(expected.df)
    assert (difference.ci_low, difference.ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))


def test_welch_without_spread_on_both_sides():
    # scipy is no reference here: the mean of three 0.1s is 0.10000000000000002 in floating point,
    # so it tests a spurious difference (p = 0.29 for identical values); we take identical as identical.
    assert welch([0.1, 0.1], [0.1, 0.1, 0.1]) == Difference(2, 3, 0.0, 0.0, 0.0, None, 1.0)
    different = welch([0.3, 0.3], [0.1, 0.1, 0.1])
    assert different.p_value == 0.0 and different.ci_low == different.ci_high == pytest.approx(0.2)


def test_welch_needs_two_values_a_side():
    one = welch([0.5], [0.4, 0.45, 0.43])
    assert one.delta == pytest.approx(0.5 - np.mean([0.4, 0.45, 0.43]))
    assert one.ci_low is None and one.p_value is None and one.df is None
    assert welch([], [0.4, 0.5]).delta is None


def test_holm_matches_the_textbook_case():
    # statsmodels 0.15.0 multipletests([0.01, 0.04, 0.03, 0.005], method="holm") -> [0.03, 0.06, 0.06, 0.02]
    adjusted = holm([0.01, None, 0.04, 0.03, 0.005])
    assert adjusted[1] is None
    assert [adjusted[i] for i in (0, 2, 3, 4)] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == [] and holm([0.2]) == [0.2]


# Seeds per group for power 0.8, α = 0.05 two-sided, by Cohen's d. statsmodels 0.15.0
# TTestIndPower().solve_power(d, alpha=0.05, power=0.8) gives 393.4, 63.8, 25.5, 16.7, 8.06, 5.09,
# 3.07 (rounded up below), and its power at n = 17, d = 1 is 0.80704 (0.78140 at n = 16).
@pytest.mark.parametrize(
    ("effect_size", "per_group"), [(0.2, 394), (0.5, 64), (0.8, 26), (1.0, 17), (1.5, 9), (2.0, 6), (3.0, 4)]
)
def test_power_seeds_matches_textbook_values(effect_size, per_group):
    assert power_seeds(effect_size) == per_group


def test_power_by_noncentral_t():
    from harness.stats import _power

    assert _power(1.0, 17, 0.05) == pytest.approx(0.8070367151472196, rel=1e-9)
    assert _power(1.0, 16, 0.05) == pytest.approx(0.7813977924664225, rel=1e-9)


def test_power_seeds_falls_as_the_effect_grows_and_is_capped():
    counts = [power_seeds(d) for d in (0.05, 0.1, 0.3, 0.6, 1.2, 2.5, 10)]
    assert counts == sorted(counts, reverse=True) and counts[-1] == 2
    assert power_seeds(0.01) == 1001 and power_seeds(0.0) == 1001
    assert power_seeds(0.2, cap=100) == 101


def test_seeds_needed_from_observed_values():
    # Pooled sd 0.01 (each side ±0.01 around its mean), Δ = 0.01: d = 1, so 17 seeds per recipe.
    a, b = [0.70, 0.71, 0.72], [0.71, 0.72, 0.73]
    assert seeds_needed(a, b) == SeedsNeeded(17)
    assert str(seeds_needed(a, b)) == "17"
    assert seeds_needed([0.7], b) == SeedsNeeded(None, "n<2")
    assert str(seeds_needed([0.70, 0.72], [0.72, 0.70])) == "Δ = 0"
    assert seeds_needed([0.3, 0.3], [0.1, 0.1]) == SeedsNeeded(2)  # no spread at all: 2 already resolve it
    assert str(seeds_needed([0.70, 0.80], [0.70, 0.80, 0.753])) == "> 1000"
    # Unequal n: the variance is pooled with n − 1 weights.
    a, b = [0.60, 0.62, 0.64, 0.66], [0.60, 0.64]
    pooled = math.sqrt((3 * np.var(a, ddof=1) + 1 * np.var(b, ddof=1)) / 4)
    assert seeds_needed(a, b).count == power_seeds(abs(np.mean(a) - np.mean(b)) / pooled)
