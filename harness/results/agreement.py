"""What a budget profile can rank: its agreement with `full`, and the line that says so.

A budget profile (fewer epochs or images than the reports trained with) ranks how fast a model
learns, not what it reaches. How far its ranking still agrees with `full` is measured here,
over the recipes that have runs at both: Spearman's ρ and Kendall's τ-b between the two
profiles' recipe means, each with a bootstrap interval over seeds (each recipe's seeds resampled
at both profiles: how much seed noise alone moves the figure), Spearman's ρ also with an
interval over recipes (Fisher z, Bonett–Wright standard error: how much another set of recipes
could move it; wide at a handful of recipes), and how many steps get the same sign and the same
verdict at both profiles. ``budget_line`` is the sentence every output of a budget profile
starts with, and ``view`` gives a profile's rows the verdicts and that line, the one way every
output (tables, README blocks, plots, parent runs) shows them.

Pure statistics over leaderboard rows (from the store, and published results for `full`): no
MLflow here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.config import BenchConfig
from harness.results.leaderboard import Row

REFERENCE = "full"  # the profile that trains as the reports did
BOOTSTRAP_DRAWS = 4000
BOOTSTRAP_SEED = 26  # fixed: the same runs always give the same interval
MINIMUM_RECIPES = 4  # below this no rank correlation is reported (3 recipes: ρ is one of ±0.5, ±1)
BUDGET_PREFIX = "Budget profile `"  # how every budget line begins (a parent's description is rewritten from it)


@dataclass(frozen=True)
class Agreement:
    """A budget profile against `full` over ``recipes`` (those with finished runs at both)."""

    profile: str
    recipes: tuple[str, ...]
    spearman: float | None = None
    spearman_low: float | None = None  # 95% bootstrap interval over seeds
    spearman_high: float | None = None
    spearman_recipes_low: float | None = None  # 95% interval over recipes (Fisher z), n >= 4
    spearman_recipes_high: float | None = None
    kendall: float | None = None
    kendall_low: float | None = None
    kendall_high: float | None = None
    steps: int = 0  # steps whose recipe and compared recipe have runs at both profiles
    signs_agree: int = 0  # of those, Δ of the same sign at both
    verdicts: int = 0  # steps with a verdict (helped / hurt / not resolved) at both
    verdicts_agree: int = 0  # of those, the same verdict at both

    @property
    def n(self) -> int:
        return len(self.recipes)

    def sentence(self) -> str:
        """One sentence with n, both coefficients, their intervals and the steps' agreement."""
        if self.n < MINIMUM_RECIPES:
            return (
                f"Agreement with `{REFERENCE}`: not measured, {self.n} recipe(s) have runs at both "
                f"(at least {MINIMUM_RECIPES} needed; docs/profiles.md)."
            )
        over_recipes = (
            ""
            if self.spearman_recipes_low is None
            else f"; over recipes [{self.spearman_recipes_low:+.2f}, {self.spearman_recipes_high:+.2f}]"
        )
        steps = (
            f"; steps: same sign {self.signs_agree}/{self.steps}, same verdict {self.verdicts_agree}/{self.verdicts}"
            if self.steps
            else ""
        )
        return (
            f"Agreement with `{REFERENCE}` over the {self.n} recipes run at both: Spearman ρ = {_signed(self.spearman)} "
            f"(95% over seeds [{_signed(self.spearman_low)}, {_signed(self.spearman_high)}]{over_recipes}), "
            f"Kendall τ = {_signed(self.kendall)} [{_signed(self.kendall_low)}, {_signed(self.kendall_high)}]{steps}."
        )


def _signed(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:+.2f}"


def budget_line(config: BenchConfig, profile: str, measured: Agreement | None = None) -> str | None:
    """'Budget profile `cpu`: at most 3 epochs on 2,500 images: ranks early learning, not the
    reports' training.' and the measured agreement; None for a profile that is not a budget."""
    words = config.profile(profile).budget_words(config.train_images(profile))
    if words is None:
        return None
    line = f"{BUDGET_PREFIX}{profile}`: {words}: ranks early learning, not the reports' training."
    return f"{line} {(measured or Agreement(profile, ())).sentence()}"


def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy import stats

    return stats.rankdata(values, axis=-1)


def _spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ along the last axis (ties get average ranks); NaN where a side is constant."""
    rx, ry = _ranks(x), _ranks(y)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=-1) / denominator


def _kendall(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's τ-b along the last axis (scipy's default); NaN where a side is constant."""
    dx = np.sign(x[..., :, None] - x[..., None, :])
    dy = np.sign(y[..., :, None] - y[..., None, :])
    upper = np.triu(np.ones(dx.shape[-2:], dtype=bool), k=1)
    concordance = (dx * dy)[..., upper].sum(axis=-1)
    pairs_x = (dx != 0)[..., upper].sum(axis=-1)
    pairs_y = (dy != 0)[..., upper].sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return concordance / np.sqrt(pairs_x * pairs_y)


def _interval(draws: np.ndarray) -> tuple[float | None, float | None]:
    finite = draws[np.isfinite(draws)]
    if finite.size < 0.9 * draws.size:  # mostly undefined (a constant side): no interval
        return None, None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def _over_recipes(rho: float, n: int) -> tuple[float | None, float | None]:
    """Spearman's ρ 95% interval over recipes: Fisher's z with Bonett & Wright's (2000) standard
    error √((1 + ρ²/2) / (n − 3)); None below 4 recipes or at |ρ| = 1."""
    if n < 4 or not math.isfinite(rho) or abs(rho) >= 1:
        return None, None
    half = 1.959963984540054 * math.sqrt((1 + rho**2 / 2) / (n - 3))
    centre = math.atanh(rho)
    return math.tanh(centre - half), math.tanh(centre + half)


def agreement(
    config: BenchConfig,
    rows: Sequence[Row],
    reference: Sequence[Row],
    *,
    profile: str,
    draws: int = BOOTSTRAP_DRAWS,
) -> Agreement:
    """``rows`` (one budget profile's) against ``reference`` (`full`'s) over the recipes with a
    finished seed at both. Neither list is changed."""
    from harness.results.steps import HELPED, HURT, step_deltas

    here = {r.recipe: r for r in rows if r.n}
    there = {r.recipe: r for r in reference if r.n}
    common = tuple(name for name in config.recipes if name in here and name in there)
    if len(common) < MINIMUM_RECIPES:
        return Agreement(profile, common)
    x = np.array([here[name].mean for name in common])
    y = np.array([there[name].mean for name in common])
    rng = np.random.default_rng(BOOTSTRAP_SEED)

    def resampled(side: dict[str, Row]) -> np.ndarray:
        columns = []
        for name in common:
            values = np.asarray(side[name].values)
            columns.append(values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1))
        return np.stack(columns, axis=1)

    bx, by = resampled(here), resampled(there)
    rho, tau = float(_spearman(x, y)), float(_kendall(x, y))
    low, high = _interval(_spearman(bx, by))
    tau_low, tau_high = _interval(_kendall(bx, by))
    recipes_low, recipes_high = _over_recipes(rho, len(common))

    def judged(side: dict[str, Row]) -> dict[str, object]:
        copies = [dataclasses.replace(side[name]) for name in common]  # step_deltas re-ranks its rows
        return {d.recipe: d for d in step_deltas(config, copies, set(common), claims=False) if d.base in common}

    at_profile, at_reference = judged(here), judged(there)
    shared = [name for name in at_profile if name in at_reference]
    signs = sum(
        np.sign(at_profile[name].delta) == np.sign(at_reference[name].delta)
        for name in shared
        if at_profile[name].delta is not None and at_reference[name].delta is not None
    )

    def verdict(delta) -> str | None:
        if delta.verdict in (HELPED, HURT):
            return delta.verdict
        return "not resolved" if delta.verdict.startswith("not resolved") else None

    judged_both = [name for name in shared if verdict(at_profile[name]) and verdict(at_reference[name])]
    return Agreement(
        profile=profile,
        recipes=common,
        spearman=rho,
        spearman_low=low,
        spearman_high=high,
        spearman_recipes_low=recipes_low,
        spearman_recipes_high=recipes_high,
        kendall=tau,
        kendall_low=tau_low,
        kendall_high=tau_high,
        steps=len(shared),
        signs_agree=int(signs),
        verdicts=len(judged_both),
        verdicts_agree=sum(verdict(at_profile[n]) == verdict(at_reference[n]) for n in judged_both),
    )


@dataclass
class View:
    """One profile's rows as every output shows them (see ``view``)."""

    rows: list[Row]
    deltas: list  # harness.results.steps.StepDelta
    budget: str | None  # the budget line, None for a profile that trains as the reports did
    agreement: Agreement | None


def view(
    config: BenchConfig,
    rows: list[Row],
    *,
    profile: str,
    names=None,
    reference: Sequence[Row] | None = None,
    measured: Sequence[Row] | None = None,
    against: str = "previous",
) -> View:
    """``rows`` (one profile's, as shown) with their verdicts: each row against the leader and
    each step (of ``names``) against the step it is compared with, in one Holm family
    (``harness.results.steps.step_deltas``). A budget profile's rows check no claim, and its line
    carries the agreement of ``measured`` (the profile's rows to compare, default ``rows``)
    with ``reference`` (`full`'s rows; None: not measured here)."""
    from harness.results.steps import step_deltas
    from harness.results.verdicts import without_claim_checks

    budget = config.profile(profile).is_budget
    if budget:
        without_claim_checks(rows)
    deltas = step_deltas(config, rows, names, against=against, claims=not budget)
    if not budget:
        return View(rows, deltas, None, None)
    compared = None
    if reference is not None:
        mine = [dataclasses.replace(r) for r in (rows if measured is None else measured)]
        compared = agreement(config, mine, reference, profile=profile)
    return View(rows, deltas, budget_line(config, profile, compared), compared)
