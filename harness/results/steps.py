"""Did each step help? Every recipe built from another step of its report, against that step.

A report is a chain of steps, each built from an earlier one: the recipe's ``previous`` (read
from the report's narrative; default its ``base``, the recipe it inherits its training from,
which in report 004 is step 1 for steps 3-7). For each step: Δ = mean(step) − mean(previous)
over seeds, Welch's p Holm-adjusted in ONE family with the leaderboard's comparisons
(``harness.results.verdicts.compare_with_leader``: a pair shown in both tables has one p and one
verdict), Welch's interval at the level Holm tested it at (it excludes 0 exactly where the
verdict is helped / hurt), the report's own claimed Δ (claim(step) − claim(previous), each from
one run; none at a budget profile), a verdict in words, and for an unresolved Δ the seeds per
recipe that would resolve a difference that large by the same Welch test (power 0.8 at α / m,
m the family's tests: Holm's strictest step, so the count agrees with the verdict).
``against="first"`` compares each step with the first step of its chain instead (cumulative).

Pure statistics over leaderboard rows and the configuration's links: no MLflow here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

from harness.config import BenchConfig, Recipe
from harness.results.leaderboard import FAMILY_WORDS, HOLM_CI_WORDS, Row, p_text
from harness.results.stats import ALPHA, seeds_needed
from harness.results.verdicts import compare_with_leader

HELPED, HURT = "helped", "hurt"
INSUFFICIENT = "insufficient (n<2)"
NO_RUNS = "no runs"
AGAINST = ("previous", "first")  # what a step is compared with: the step it was built from, or its chain's first


@dataclass
class StepDelta:
    """One step against the step it is compared with, under one profile; fractions (0.62 = 62%)."""

    report: str  # the source report's file name
    recipe: str
    base: str  # the recipe it is compared with: its previous step (or with against="first" its chain's first)
    n: int  # finished seeds of the step
    base_n: int
    mean: float | None
    base_mean: float | None
    delta: float | None  # mean − base_mean
    delta_ci_low: float | None  # Welch's interval of delta at the level Holm tested it at
    delta_ci_high: float | None
    p_value: float | None  # Welch's t-test, two-sided
    p_holm: float | None  # Holm-adjusted across the family (leaderboard and steps of the profile)
    claimed: float | None  # the report's single-run numbers
    base_claimed: float | None
    claimed_delta: float | None  # claimed − base_claimed; None at a budget profile
    verdict: str  # helped | hurt | not resolved at n=… | insufficient (n<2) | no runs
    seeds_needed: int | None  # per recipe, for power 0.8 at the observed |Δ|; unresolved steps only
    seeds_needed_note: str  # why there is no count: "> 1000", "Δ = 0", "n<2", "resolved", "" (no runs)
    summary: str  # what the step changed, from the recipe
    against: str = "previous"  # previous | first
    delta_ci_confidence: float | None = None  # the confidence of delta_ci_* (1 − Holm's level)
    family: int = 0  # tests in the Holm family (m): the leader comparisons and the steps, a pair once

    @property
    def resolved(self) -> bool:
        return self.verdict in (HELPED, HURT)


def report_label(report: str) -> str:
    """'report 004' for a report file named 004_….txt; the name itself for anything else."""
    return f"report {report[:3]}" if report[:3].isdigit() and report[3:4] == "_" else report


def _verdict(n: int, base_n: int, delta: float | None, p_holm: float | None) -> str:
    if n == 0 or base_n == 0:
        return NO_RUNS
    if p_holm is None:
        return INSUFFICIENT
    if p_holm < ALPHA and delta:
        return HELPED if delta > 0 else HURT
    return f"not resolved at n={n}" if n == base_n else f"not resolved at n={n} vs {base_n}"


def first_step(config: BenchConfig, recipe: Recipe) -> Recipe:
    """The first step of ``recipe``'s chain: ``previous`` followed back to a recipe without one."""
    while recipe.previous is not None:
        recipe = config.recipes[recipe.previous]
    return recipe


def compared_with(config: BenchConfig, recipe: Recipe, against: str = "previous") -> Recipe | None:
    """The recipe a step is compared with (None: not a step)."""
    if recipe.previous is None:
        return None
    return config.recipes[recipe.previous] if against == "previous" else first_step(config, recipe)


def step_deltas(
    config: BenchConfig,
    rows: Sequence[Row],
    names: Collection[str] | None = None,
    *,
    against: str = "previous",
    claims: bool = True,
) -> list[StepDelta]:
    """Every step (of ``names``, default all) against the step it was built from (``against``
    "previous") or the first step of its chain ("first"), in file order.

    ``rows`` are one profile's leaderboard rows, those the family is drawn over: the rows get
    their comparison with the leader again, in the same Holm family as the steps (see the module
    docstring). A recipe without a row has no runs. ``claims=False`` (a budget profile) leaves
    out the claimed Δ.
    """
    if against not in AGAINST:
        raise ValueError(f"against must be one of {AGAINST}, got {against!r}")
    rows = list(rows)
    by_recipe = {row.recipe: row for row in rows}
    steps = [r for r in config.recipes.values() if r.previous is not None and (names is None or r.name in names)]
    pairs = [(step, compared_with(config, step, against)) for step in steps]
    family = compare_with_leader(rows, also=[(step.name, other.name) for step, other in pairs])
    deltas = []
    for step, other in pairs:
        delta = _delta(step, other, by_recipe, family.tests.get((step.name, other.name)), claims=claims)
        delta.against, delta.family = against, family.size
        delta.verdict = _verdict(delta.n, delta.base_n, delta.delta, delta.p_holm)
        if delta.resolved or delta.verdict == NO_RUNS:
            delta.seeds_needed, delta.seeds_needed_note = None, "resolved" if delta.resolved else ""
        else:
            needed = seeds_needed(
                _values(by_recipe, step.name), _values(by_recipe, other.name), alpha=ALPHA / max(family.size, 1)
            )
            delta.seeds_needed, delta.seeds_needed_note = needed.count, needed.note
        deltas.append(delta)
    return deltas


def _values(by_recipe: dict[str, Row], name: str) -> list[float]:
    return by_recipe[name].values if name in by_recipe else []


def _delta(step: Recipe, base: Recipe, by_recipe: dict[str, Row], test, *, claims: bool) -> StepDelta:
    from harness.results.stats import welch

    values, base_values = _values(by_recipe, step.name), _values(by_recipe, base.name)
    difference = test.difference if test is not None else welch(values, base_values)
    claimed, base_claimed = step.reported.test_accuracy, base.reported.test_accuracy
    return StepDelta(
        report=step.source.report,
        recipe=step.name,
        base=base.name,
        n=len(values),
        base_n=len(base_values),
        mean=by_recipe[step.name].mean if values else None,
        base_mean=by_recipe[base.name].mean if base_values else None,
        delta=difference.delta,
        delta_ci_low=difference.ci_low if test is not None and test.p_holm is not None else None,
        delta_ci_high=difference.ci_high if test is not None and test.p_holm is not None else None,
        p_value=None if test is None else test.p_value,
        p_holm=None if test is None else test.p_holm,
        claimed=claimed,
        base_claimed=base_claimed,
        claimed_delta=None if not claims or claimed is None or base_claimed is None else claimed - base_claimed,
        verdict="",
        seeds_needed=None,
        seeds_needed_note="",
        summary=step.summary,
        delta_ci_confidence=None if test is None else test.confidence,
    )


def reports_with_runs(config: BenchConfig, rows: Sequence[Row], names: Collection[str]) -> tuple[set[str], list[str]]:
    """``names`` less the recipes of every report none of whose recipes (in ``names``) has a
    finished run in ``rows``, and those reports' labels: a report nobody trained at this profile
    is one line, not a table and a panel of "no runs"."""
    ran = {row.recipe for row in rows if row.n}
    report_of = {name: config.recipe(name).source.report for name in names}
    trained = {report for name, report in report_of.items() if name in ran}
    idle = sorted({report for report in report_of.values() if report not in trained})
    return {name for name, report in report_of.items() if report in trained}, [report_label(r) for r in idle]


def chains(config: BenchConfig, names: Collection[str] | None = None) -> dict[str, list[Recipe]]:
    """Each report's recipes (of ``names``) in file order: the x axis of its panel in the plot."""
    grouped: dict[str, list[Recipe]] = {}
    for recipe in config.recipes.values():
        if names is None or recipe.name in names:
            grouped.setdefault(recipe.source.report, []).append(recipe)
    return grouped


# Rendering ------------------------------------------------------------------------------------

CLAIM_COLUMN = "claimed Δ pp"


def columns(*, against: str = "previous", claims: bool = True) -> tuple[str, ...]:
    """The step table's columns: "vs previous" or "vs first"; no claim column on a budget profile."""
    shown = (
        "step",
        f"vs {against}",
        "n step/vs",
        "step %",
        "vs %",
        "Δ pp [Holm CI]",
        "Holm p",
        CLAIM_COLUMN,
        "verdict",
        "seeds needed",
    )
    return shown if claims else tuple(c for c in shown if c != CLAIM_COLUMN)


def short_legend(*, against: str = "previous", claims: bool = True) -> str:
    """The README's legend of the step table, in a few lines (``legend`` in full)."""
    compared = "the step it was built from (`previous`)" if against == "previous" else "the first step of its chain"
    claim = " Claimed Δ: the report's two single runs." if claims else ""
    return (
        f"Δ = mean(step) − mean(vs) in pp, against {compared}, with Welch's interval at the level Holm tested "
        "it at: it excludes 0 exactly where the verdict is helped or hurt; not resolved at n is not 'no "
        f"effect'.{claim} Seeds needed: per recipe, for an 80% chance to resolve a Δ as large. Every column: "
        "docs/statistics.md."
    )


def legend(*, against: str = "previous", claims: bool = True) -> str:
    """What the step table's columns mean: the same family and interval rule as the leaderboard's."""
    compared = (
        "the step it was built from (its `previous` in recipes/*.toml, read from the report; not always the row above)"
        if against == "previous"
        else "the first step of its chain (cumulative)"
    )
    claim = (
        "Claimed Δ = the report's claim for the step minus its claim for the other, each from one run. "
        if claims
        else ""
    )
    return (
        f"Δ = mean(step) − mean(vs) over seeds, in percentage points, against {compared}. Holm CI: "
        f"{HOLM_CI_WORDS}. Holm p: Welch's t-test p, {FAMILY_WORDS}. Verdict: helped / hurt where Holm p < "
        f"{ALPHA} (the Holm CI then lies on that side of 0); otherwise not resolved at these n, which is not "
        f"'no effect'. {claim}Seeds needed (unresolved steps): seeds per recipe for an 80% chance that the same "
        "Welch test resolves a Δ as large as the observed one, from each side's spread, at α = 0.05 / (tests in "
        "the family), Holm's strictest step. How to read it: docs/statistics.md."
    )


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.2f}"


def table_cells(delta: StepDelta, *, claims: bool = True) -> list[str]:
    interval = "" if delta.delta_ci_low is None else f" [{_signed(delta.delta_ci_low)}, {_signed(delta.delta_ci_high)}]"
    if delta.seeds_needed is not None:
        needed = str(delta.seeds_needed)
    else:
        needed = "–" if delta.seeds_needed_note in ("resolved", "") else delta.seeds_needed_note
    cells = [
        delta.recipe,
        delta.base,
        f"{delta.n}/{delta.base_n}",
        _percent(delta.mean),
        _percent(delta.base_mean),
        _signed(delta.delta) + interval,
        p_text(delta.p_holm),
        _signed(delta.claimed_delta),
        delta.verdict,
        needed,
    ]
    return cells if claims else cells[:7] + cells[8:]


def by_report(deltas: Sequence[StepDelta]) -> dict[str, list[StepDelta]]:
    grouped: dict[str, list[StepDelta]] = {}
    for delta in deltas:
        grouped.setdefault(delta.report, []).append(delta)
    return grouped


def tally(deltas: Sequence[StepDelta]) -> str:
    """'2 helped, 1 hurt, 7 not resolved' for one report's steps."""
    counts = {
        HELPED: sum(d.verdict == HELPED for d in deltas),
        HURT: sum(d.verdict == HURT for d in deltas),
        "not resolved": sum(d.verdict.startswith("not resolved") for d in deltas),
        INSUFFICIENT: sum(d.verdict == INSUFFICIENT for d in deltas),
        NO_RUNS: sum(d.verdict == NO_RUNS for d in deltas),
    }
    return ", ".join(f"{count} {name}" for name, count in counts.items() if count) or "no steps"


def _against(deltas: Sequence[StepDelta]) -> str:
    return deltas[0].against if deltas else "previous"


def to_markdown(
    deltas: Sequence[StepDelta], *, heading_level: int = 3, budget: str | None = None, short: bool = False
) -> str:
    """One table per report, each under a heading with its tally, then the legend (``short``: the
    README's); a budget profile's (``budget``: its line, printed above by the caller) has no claim
    column."""
    claims, against = budget is None, _against(deltas)
    shown = columns(against=against, claims=claims)
    parts = []
    for report, family in by_report(deltas).items():
        lines = [
            f"{'#' * heading_level} {report_label(report)} ({report}): {tally(family)}",
            "",
            "| " + " | ".join(shown) + " |",
            "|" + "|".join("---" for _ in shown) + "|",
        ]
        lines += ["| " + " | ".join(table_cells(d, claims=claims)) + " |" for d in family]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts) + "\n" + (short_legend if short else legend)(against=against, claims=claims) + "\n"


def to_csv(deltas: Sequence[StepDelta]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(StepDelta.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    for delta in deltas:
        writer.writerow(asdict(delta))
    return buffer.getvalue()


def to_json(deltas: Sequence[StepDelta]) -> str:
    return json.dumps([asdict(d) for d in deltas], indent=2)


def to_rich_tables(deltas: Sequence[StepDelta], *, profile: str, budget: str | None = None) -> list:
    """One rich table per report; the legend goes under the last. A budget profile's tables say
    so in the line above their columns and have no claim column."""
    from rich.markup import escape
    from rich.table import Table

    claims, against = budget is None, _against(deltas)
    shown = columns(against=against, claims=claims)
    verdict_column = shown.index("verdict")
    tables = []
    groups = by_report(deltas)
    for index, (report, family) in enumerate(groups.items()):
        last = index == len(groups) - 1
        title = escape(f"Steps of {report_label(report)}, profile '{profile}': {tally(family)}")
        table = Table(
            title=f"{title}\n[bold yellow]{escape(budget)}[/bold yellow]" if budget else title,
            caption=legend(against=against, claims=claims) if last else None,
            caption_justify="left",
        )
        for column in shown:
            left = column in ("step", f"vs {against}", "verdict")
            table.add_column(column, justify="left" if left else "right", no_wrap=column in ("step", f"vs {against}"))
        for delta in family:
            cells = table_cells(delta, claims=claims)
            style = {HELPED: "green", HURT: "red"}.get(delta.verdict)
            cells[verdict_column] = f"[{style}]{cells[verdict_column]}[/{style}]" if style else cells[verdict_column]
            table.add_row(*cells)
        tables.append(table)
    return tables
