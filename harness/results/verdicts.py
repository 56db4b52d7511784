"""A board's rows judged: each row's claim against its prediction interval (``check_claims``), and
every row against the leader together with each step against the step it was built from, as one
family of Welch tests with Holm's adjustment (``compare_with_leader``), each with its verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.results.stats import (
    ALPHA,
    CONFIDENCE,
    Difference,
    holm,
    holm_levels,
    moderated_prior,
    robust_prediction_interval,
    welch,
    within,
)

if TYPE_CHECKING:
    from harness.results.leaderboard import Row


SIGNIFICANCE = ALPHA  # Holm-adjusted Welch p below this: resolved from the leader


VERDICT_LEADER = "leader"


VERDICT_RESOLVED = "resolved"


VERDICT_NOT_RESOLVED = "not resolved"


VERDICT_INSUFFICIENT = "insufficient (n<2)"


VERDICT_NO_RUN = "no finished run"


def ranking_key(row: Row) -> tuple:
    """Best mean first, rows without a mean last, ties by recipe name: never the input order.
    Stale rows come after a profile's current ones."""
    return (row.profile, row.stale, row.mean is None, -(row.mean or 0.0), row.recipe, row.config_hash)


def check_claims(rows: list[Row]) -> None:
    """Each row's prediction interval and claim check, on one board: below ROBUST_PI_BELOW seeds
    the wider of the row's own interval and the one from its variance moderated toward the
    board's (``harness.results.stats.robust_prediction_interval``)."""
    prior = moderated_prior([r.std**2 if r.std is not None else 0.0 for r in rows], [max(r.n - 1, 0) for r in rows])
    for row in rows:
        row.pi_low, row.pi_high = robust_prediction_interval(row.values, prior)
        row.reported_in_pi = within(row.reported, row.pi_low, row.pi_high)


def without_claim_checks(rows: list[Row]) -> None:
    """A budget profile's rows: the claims are for the reports' training, so no row is checked
    against one (the claim itself stays, as the recipe's record)."""
    for row in rows:
        row.reported_in_ci = row.reported_in_pi = row.difference = None


def comparison_leader(rows: list[Row]) -> Row | None:
    """The row every other is compared with: the best mean among rows with n >= 2 (a row with
    one seed has no spread to test against, however high its value)."""
    candidates = [r for r in rows if r.n >= 2]
    return min(candidates, key=ranking_key) if candidates else None


@dataclass(frozen=True)
class PairTest:
    """One comparison of a family: Welch's difference (``difference``, its interval at the
    confidence Holm tested it at), Welch's raw p, the Holm-adjusted p and that confidence."""

    difference: Difference
    p_value: float | None
    p_holm: float | None
    confidence: float | None


@dataclass(frozen=True)
class Family:
    """What ``compare_with_leader`` returns: the tests of the pairs asked besides the leader
    comparisons, and how many tests the whole family holds (Holm's m)."""

    tests: dict[tuple[str, str], PairTest]
    size: int


def compare_with_leader(rows: list[Row], also: Sequence[tuple[str, str]] = ()) -> Family:
    """Each row of one board against its leader (``comparison_leader``), and each pair of
    ``also`` (a step and the step it is compared with), as ONE family of Welch tests: a pair
    asked twice is tested once, and Holm's adjustment runs over all of them, so a pair shown in
    the leaderboard and in the step table has one p and one verdict. Each difference's interval
    is Welch's at the level Holm tested it at (``harness.results.stats.holm_levels``): it excludes 0
    exactly where the Holm-adjusted p is below SIGNIFICANCE. Returns the tests of ``also``, in
    the orientation asked (mean of the first − mean of the second), and the family's size.

    ``tied_with_leader`` (kept for readers of older output) is True where the Holm-adjusted p
    is >= SIGNIFICANCE: the difference is *not resolved* at these n, which is not the same as
    equal. Rows with n < 2 get no test and are marked insufficient.
    """
    for row in rows:
        row.leader, row.p_vs_leader, row.p_vs_leader_holm, row.tied_with_leader = "", None, None, None
        row.delta_vs_leader = row.delta_ci_low = row.delta_ci_high = row.delta_ci_confidence = None
        row.leader_verdict = VERDICT_NO_RUN if row.n == 0 else VERDICT_INSUFFICIENT if row.n < 2 else ""
    by_recipe = {row.recipe: row for row in rows}
    leader = comparison_leader(rows)
    asked: list[tuple[str, str]] = []
    if leader is not None:
        asked += [(r.recipe, leader.recipe) for r in rows if r is not leader and r.n >= 2]
    asked += [(a, b) for a, b in also if a in by_recipe and b in by_recipe]
    family: dict[frozenset, tuple[str, str]] = {}
    for a, b in asked:
        if by_recipe[a].n >= 2 and by_recipe[b].n >= 2 and a != b:
            family.setdefault(frozenset((a, b)), (a, b))
    keys = list(family)
    raw = [welch(by_recipe[family[k][0]].values, by_recipe[family[k][1]].values).p_value for k in keys]
    adjusted = dict(zip(keys, holm(raw), strict=True))
    levels = dict(zip(keys, holm_levels(raw), strict=True))
    p_values = dict(zip(keys, raw, strict=True))

    def test(a: str, b: str) -> PairTest:
        key = frozenset((a, b))
        if key not in family:
            return PairTest(welch(by_recipe[a].values, by_recipe[b].values), None, None, None)
        confidence = None if levels[key] is None else 1 - levels[key]
        difference = welch(by_recipe[a].values, by_recipe[b].values, confidence=confidence or CONFIDENCE)
        return PairTest(difference, p_values[key], adjusted[key], confidence)

    if leader is not None:
        for row in rows:
            row.leader = leader.recipe
            if row.mean is not None:
                row.delta_vs_leader = row.mean - leader.mean
        leader.leader_verdict, leader.delta_vs_leader = VERDICT_LEADER, 0.0
        for row in (r for r in rows if r is not leader and r.n >= 2):
            result = test(row.recipe, leader.recipe)
            row.delta_ci_low, row.delta_ci_high = result.difference.ci_low, result.difference.ci_high
            row.delta_ci_confidence = result.confidence
            row.p_vs_leader, row.p_vs_leader_holm = result.p_value, result.p_holm
            row.tied_with_leader = result.p_holm is None or result.p_holm >= SIGNIFICANCE
            row.leader_verdict = VERDICT_NOT_RESOLVED if row.tied_with_leader else VERDICT_RESOLVED
    return Family({(a, b): test(a, b) for a, b in also if a in by_recipe and b in by_recipe}, len(keys))
