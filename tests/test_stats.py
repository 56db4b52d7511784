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
