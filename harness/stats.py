"""Summary statistics over seeds: n, mean, sample std, t-based 95% confidence interval."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Statistics of one sample; spread fields are None when n < 2 (no spread to report)."""

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    minimum: float | None
    maximum: float | None


def describe(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """n, mean, sample std (ddof=1) and the t-based confidence interval of the mean."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return Summary(0, None, None, None, None, None, None)
    mean = math.fsum(values) / n
    if n < 2:
        return Summary(1, mean, None, None, None, values[0], values[0])
    from scipy import stats

    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, min(values), max(values))
