"""Statistics over seeds, and the tests the leaderboard and the step table rest on.

Three questions, three intervals, all t-based at 95%:

- where is a recipe's mean? the confidence interval of the mean, mean ± t·s/√n;
- where would one more run land (like a report's single run)? the prediction interval,
  mean ± t·s·√(1 + 1/n): a claim from the same distribution falls outside it 5% of the time
  whatever n is, while it falls outside the CI of the mean more often the more seeds we run.
  Below ``ROBUST_PI_BELOW`` seeds the board uses the wider of that and the interval from a
  moderated variance (``moderated_prior``), so no claim check hangs on a freak small spread;
- is one recipe better than another? Welch's t-test on the difference of means (unequal
  variances, Welch–Satterthwaite degrees of freedom), Holm-adjusted across one family of
  comparisons, with the interval at the level Holm tested it at (``holm_levels``), so the
  interval excludes 0 exactly where the verdict is resolved.

``seeds_needed`` turns an unresolved difference into the number of seeds per recipe that would
detect it with power 0.8 by the same Welch test (noncentral t).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
ALPHA = 0.05  # two-sided significance level of every test here
POWER = 0.8  # the power ``seeds_needed`` aims for
SEEDS_NEEDED_CAP = 1000  # beyond this ``seeds_needed`` says "more than the cap"


@functools.lru_cache(maxsize=4096)
def t_quantile(probability: float, df: float) -> float:
    """Student's t quantile; cached, as the same few (probability, df) pairs recur in every table."""
    from scipy import stats

    return float(stats.t.ppf(probability, df))


def split_finite(values: Sequence[float]) -> tuple[list[float], int]:
    """The finite values, and how many were NaN or infinite: such a seed is a failed seed, never a value."""
    finite = [float(v) for v in values if math.isfinite(float(v))]
    return finite, len(values) - len(finite)


@dataclass(frozen=True)
class Summary:
    """Statistics of one sample; spread fields are None when n < 2 (no spread to report).

    ``ci_*`` bound the mean; ``pi_*`` bound one more run drawn like these (prediction interval).
    """

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    minimum: float | None
    maximum: float | None
    pi_low: float | None = None
    pi_high: float | None = None


def _mean(values: Sequence[float]) -> float:
    """Exactly the value for identical values (summing 0.1 three times and dividing by 3 is not 0.1)."""
    return values[0] if max(values) == min(values) else math.fsum(values) / len(values)


def _sample_variance(values: Sequence[float], mean: float) -> float:
    """ddof=1; exactly 0 for identical values (no rounding residue from the mean)."""
    if max(values) == min(values):
        return 0.0
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def describe(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """n, mean, sample std (ddof=1), the t-based confidence interval of the mean and the
    prediction interval for one new value. Values must be finite (see ``split_finite``)."""
    values = [float(v) for v in values]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"describe() takes finite values only, got {values!r}")
    n = len(values)
    if n == 0:
        return Summary(0, None, None, None, None, None, None)
    mean = _mean(values)
    if n < 2:
        return Summary(1, mean, None, None, None, values[0], values[0])
    std = math.sqrt(_sample_variance(values, mean))
    t = t_quantile(0.5 + confidence / 2, n - 1)
    half = t * std / math.sqrt(n)
    predict = t * std * math.sqrt(1 + 1 / n)
    return Summary(n, mean, std, mean - half, mean + half, min(values), max(values), mean - predict, mean + predict)


def within(value: float | None, low: float | None, high: float | None) -> bool | None:
    """Whether ``value`` lies in [low, high]; None where either is missing."""
    if value is None or low is None or high is None:
        return None
    return bool(low <= value <= high)


@dataclass(frozen=True)
class Difference:
    """mean(a) − mean(b) with its Welch confidence interval and two-sided p-value.

    ``delta`` is there whenever both sides have a value; the interval, ``df`` and ``p_value``
    only when both have n ≥ 2. Both sides without spread (every seed identical): the interval
    is the point and p is 1 for equal means, 0 otherwise (the limit of the test as the spread
    vanishes; scipy returns NaN there).
    """

    n_a: int
    n_b: int
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    df: float | None
    p_value: float | None


def welch(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """Welch's unequal-variance t-test of mean(a) − mean(b), with the Welch–Satterthwaite df."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    n_a, n_b = len(a), len(b)
    if not a or not b:
        return Difference(n_a, n_b, None, None, None, None, None)
    mean_a, mean_b = _mean(a), _mean(b)
    delta = mean_a - mean_b
    if n_a < 2 or n_b < 2:
        return Difference(n_a, n_b, delta, None, None, None, None)
    share_a = _sample_variance(a, mean_a) / n_a
    share_b = _sample_variance(b, mean_b) / n_b
    if share_a + share_b == 0:
        return Difference(n_a, n_b, delta, delta, delta, None, 1.0 if delta == 0 else 0.0)
    from scipy import stats

    standard_error = math.sqrt(share_a + share_b)
    df = (share_a + share_b) ** 2 / (share_a**2 / (n_a - 1) + share_b**2 / (n_b - 1))
    half = t_quantile(0.5 + confidence / 2, df) * standard_error
    p_value = float(2 * stats.t.sf(abs(delta) / standard_error, df))
    return Difference(n_a, n_b, delta, delta - half, delta + half, df, min(1.0, p_value))


def holm_levels(p_values: Sequence[float | None], alpha: float = ALPHA) -> list[float | None]:
    """The significance level Holm's step-down procedure tests each p-value at (None = no test):
    α / (m − j + 1) at its step j (smallest p first), and for every test after the procedure
    stopped, the level of the step where it stopped. An interval at 1 − level then excludes 0
    exactly where Holm resolves the difference, whatever the others show (for a resolved test
    it is the interval at the level that resolved it, not a simultaneous 95% interval)."""
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    levels: list[float | None] = [None] * len(p_values)
    stopped: float | None = None
    for rank, (p, index) in enumerate(tested):
        level = alpha / (len(tested) - rank)
        if stopped is None and not p < level:
            stopped = level
        levels[index] = level if stopped is None else stopped
    return levels


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None = no test, left out of the
    family and returned as None): controls the chance of any false "resolved" at ALPHA."""
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[index] = running
    return adjusted


def _welch_power(delta: float, variance_a: float, variance_b: float, per_group: int, alpha: float) -> float:
    """Power of Welch's two-sided test with ``per_group`` seeds a side, at a true difference
    ``delta`` and true variances ``variance_a``, ``variance_b``: noncentral t with the
    Welch–Satterthwaite df. Equal variances give the two-sample t-test's power exactly."""
    from scipy import stats

    total = variance_a + variance_b
    df = total**2 * (per_group - 1) / (variance_a**2 + variance_b**2)
    critical = t_quantile(1 - alpha / 2, df)
    noncentrality = delta / math.sqrt(total / per_group)
    # The far tail as sf(c; -λ), equal to cdf(-c; λ): scipy 1.17's nct.cdf gives NaN there from
    # λ ≈ 7 (a NaN power made 'seeds needed' 98 where 5 seeds reach 0.96).
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.sf(critical, df, -noncentrality))


@dataclass(frozen=True)
class SeedsNeeded:
    """Seeds per recipe that would resolve a difference (``count``), or why there is no count
    (``note``: "> 1000", "Δ = 0", "n<2")."""

    count: int | None
    note: str = ""

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else self.note


def seeds_needed(
    a: Sequence[float], b: Sequence[float], *, alpha: float = ALPHA, cap: int = SEEDS_NEEDED_CAP
) -> SeedsNeeded:
    """Seeds per recipe (the same on both sides) for power 0.8 at ``alpha`` (two-sided) to detect
    the observed |Δ| by Welch's test, the test every verdict uses, given each side's observed
    variance. Where a Holm-adjusted p decides, pass ALPHA / m (m tests in the family: Holm's
    strictest step), so the count is enough whatever the other tests show."""
    if len(a) < 2 or len(b) < 2:
        return SeedsNeeded(None, "n<2")
    mean_a, mean_b = _mean(a), _mean(b)
    delta = abs(mean_a - mean_b)
    if delta == 0:
        return SeedsNeeded(None, "Δ = 0")
    variance_a, variance_b = _sample_variance(a, mean_a), _sample_variance(b, mean_b)
    if variance_a + variance_b == 0:
        return SeedsNeeded(2)  # no spread at all: two seeds already resolve it

    count = smallest_n(lambda n: _welch_power(delta, variance_a, variance_b, n, alpha) >= POWER, cap=cap)
    return SeedsNeeded(None, f"> {cap}") if count > cap else SeedsNeeded(count)


def smallest_n(enough: Callable[[int], bool], *, cap: int = SEEDS_NEEDED_CAP) -> int:
    """The smallest n ≥ 2 for which ``enough(n)`` (a power reached, which grows with n) holds;
    ``cap + 1`` when even ``cap`` is not enough. A doubling then a bisection: a few evaluations."""
    if enough(2):
        return 2
    low, high = 2, 4  # not enough at low throughout
    while not enough(high):
        if high >= cap:
            return cap + 1
        low, high = high, min(2 * high, cap)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


ROBUST_PI_BELOW = 5  # seeds: below this the claim check also asks the moderated interval


@dataclass(frozen=True)
class VariancePrior:
    """An empirical-Bayes prior for one board's seed variances (Smyth 2004, limma's
    ``fitFDist``): variances scattered around ``variance`` like a scaled inverse χ² with
    ``df`` degrees of freedom (``math.inf``: all recipes share one variance)."""

    df: float
    variance: float

    def moderated(self, variance: float, df: int) -> tuple[float, float]:
        """A recipe's variance shrunk toward the prior, and its degrees of freedom."""
        if math.isinf(self.df):
            return self.variance, math.inf
        return (self.df * self.variance + df * variance) / (self.df + df), self.df + df


def moderated_prior(variances: Sequence[float], dfs: Sequence[int]) -> VariancePrior | None:
    """The prior fitted to a board's sample variances (each with its n − 1 degrees of freedom)
    by the method of moments on their logarithms (Smyth 2004); None below three recipes with a
    spread. The more the variances differ between recipes, the smaller its df, the less a
    recipe's own variance is shrunk."""
    from scipy import optimize, special

    pairs = [(v, d) for v, d in zip(variances, dfs, strict=True) if v > 0 and d >= 1]
    if len(pairs) < 3:
        return None
    logs = [math.log(v) - special.digamma(d / 2) + math.log(d / 2) for v, d in pairs]
    centre = math.fsum(logs) / len(logs)
    spread = math.fsum((e - centre) ** 2 for e in logs) / (len(logs) - 1)
    excess = spread - math.fsum(special.polygamma(1, d / 2) for _, d in pairs) / len(pairs)
    if excess <= 0:
        return VariancePrior(math.inf, math.exp(centre))
    half_df = optimize.brentq(lambda x: special.polygamma(1, x) - excess, 1e-8, 1e8)
    df = 2 * half_df
    return VariancePrior(df, math.exp(centre + special.digamma(half_df) - math.log(half_df)))


def robust_prediction_interval(
    values: Sequence[float], prior: VariancePrior | None, confidence: float = CONFIDENCE
) -> tuple[float | None, float | None]:
    """The 95% prediction interval a claim is checked against: below ROBUST_PI_BELOW seeds the
    wider of the recipe's own (t with n − 1 df, its sample variance) and the one from its
    moderated variance (``VariancePrior.moderated``), from ROBUST_PI_BELOW on its own. A claim is
    then ✗ only where it lies outside both: a freak small spread of three seeds cannot decide
    it alone. The own interval is exact for any true variance; the union keeps the rate of a
    false ✗ at or below 5% (tests/test_stats.py simulates boards of unequal variances)."""
    summary = describe(values, confidence)
    if summary.pi_low is None or summary.n >= ROBUST_PI_BELOW or prior is None:
        return summary.pi_low, summary.pi_high
    variance, df = prior.moderated(summary.std**2, summary.n - 1)
    t = t_quantile(0.5 + confidence / 2, df)  # scipy: the normal quantile at df = inf
    half = max(summary.pi_high - summary.mean, t * math.sqrt(variance) * math.sqrt(1 + 1 / summary.n))
    return summary.mean - half, summary.mean + half
