"""Seed statistics agree with scipy.stats on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.stats import describe


@pytest.mark.parametrize("values", [[0.81, 0.83, 0.80], [0.5, 0.52], [0.71, 0.70, 0.74, 0.69, 0.73]])
def test_matches_scipy(values):
    summary = describe(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert summary.n == len(values)
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    assert (summary.ci_low, summary.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert (summary.minimum, summary.maximum) == (min(values), max(values))


def test_one_value_has_no_spread():
    summary = describe([0.8])
    assert summary.n == 1 and summary.mean == 0.8
    assert summary.std is None and summary.ci_low is None


def test_empty():
    assert describe([]).n == 0 and describe([]).mean is None


def test_identical_values_have_zero_width_interval():
    summary = describe([0.7, 0.7, 0.7])
    assert summary.std == pytest.approx(0, abs=1e-12)
    assert math.isclose(summary.ci_low, summary.ci_high, abs_tol=1e-12)


def test_leader_comparison_is_welch_t_test():
    from harness.leaderboard import Row, compare_with_leader

    def row(rank, values):
        return Row(
            rank=rank,
            recipe=f"r{rank}",
            profile="p",
            n=len(values),
            mean=float(np.mean(values)),
            std=None,
            ci_low=None,
            ci_high=None,
            minimum=None,
            maximum=None,
            reported=None,
            difference=None,
            reported_in_ci=None,
            params=None,
            train_seconds=None,
            images_per_second=None,
            epochs_run=None,
            failed=0,
            seeds=list(range(len(values))),
            values=values,
            p_vs_leader=None,
            tied_with_leader=None,
            report="",
            config_hash="",
            data_fingerprint="",
            hardware="",
            commit="",
            finished_at=None,
        )

    leader, close, far, single = (
        row(1, [0.80, 0.82, 0.81]),
        row(2, [0.79, 0.82, 0.80]),
        row(3, [0.60, 0.61, 0.62]),
        row(4, [0.5]),
    )
    compare_with_leader([leader, close, far, single])
    assert close.p_vs_leader == pytest.approx(stats.ttest_ind(leader.values, close.values, equal_var=False).pvalue)
    assert close.tied_with_leader is True and far.tied_with_leader is False
    assert single.tied_with_leader is None  # n < 2: no test

    # A constant sample (e.g. a model stuck at chance in every seed) is compared without a warning.
    import warnings

    constant = row(5, [0.1, 0.1, 0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare_with_leader([leader, constant])
    assert constant.tied_with_leader is False
