"""Did each step help? Every recipe with a ``base`` against that base, per report.

A report is a chain of steps, each changing one thing from the recipe its ``base`` names (not
always the step above it: several of report 004's steps go back to step 1). For each such step:
Δ = mean(step) − mean(base) over seeds, its Welch 95% CI and p, the p Holm-adjusted within the
report (the steps of one report are one family of questions), the report's own claimed Δ
(claim(step) − claim(base), each from one run), a verdict in words, and for an unresolved Δ the
seeds per recipe that would resolve a difference that large (power 0.8 at α = 0.05 / m, m the
report's tests: the level Holm's strictest step asks for, so the count agrees with the verdict).

Pure statistics over leaderboard rows and the configuration's ``base`` links: no MLflow here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

from harness.config import BenchConfig, Recipe
from harness.leaderboard import Row, p_text
from harness.stats import ALPHA, holm, seeds_needed, welch

HELPED, HURT = "helped", "hurt"
INSUFFICIENT = "insufficient (n<2)"
NO_RUNS = "no runs"


@dataclass
class StepDelta:
    """One step against its base, under one profile; fractions (0.62 = 62%), not percent."""

    report: str  # the source report's file name: the Holm family
    recipe: str
    base: str
    n: int  # finished seeds of the step
    base_n: int
    mean: float | None
    base_mean: float | None
    delta: float | None  # mean − base_mean
    delta_ci_low: float | None  # Welch 95% CI of delta
    delta_ci_high: float | None
    p_value: float | None  # Welch's t-test, two-sided
    p_holm: float | None  # Holm-adjusted within the report
    claimed: float | None  # the report's single-run numbers
    base_claimed: float | None
    claimed_delta: float | None  # claimed − base_claimed
    verdict: str  # helped | hurt | not resolved at n=… | insufficient (n<2) | no runs
    seeds_needed: int | None  # per recipe, for power 0.8 at the observed |Δ|; unresolved steps only
    seeds_needed_note: str  # why there is no count: "> 1000", "Δ = 0", "n<2", "resolved", "" (no runs)
    summary: str  # what the step changed, from the recipe

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


def step_deltas(config: BenchConfig, rows: Sequence[Row], names: Collection[str] | None = None) -> list[StepDelta]:
    """Every recipe with a ``base`` (of ``names``, default all) against its base, in file order.

    ``rows`` are one profile's leaderboard rows; a recipe without a row has no runs. The base
    may lie outside ``names``: its runs are still what the step is measured against.
    """
    by_recipe = {row.recipe: row for row in rows}
    steps = [r for r in config.recipes.values() if r.base is not None and (names is None or r.name in names)]
    deltas = [_delta(step, config.recipes[step.base], by_recipe) for step in steps]
    for report in dict.fromkeys(d.report for d in deltas):
        family = [d for d in deltas if d.report == report]
        tests = sum(d.p_value is not None for d in family)
        for delta, adjusted in zip(family, holm([d.p_value for d in family]), strict=True):
            delta.p_holm = adjusted
            delta.verdict = _verdict(delta.n, delta.base_n, delta.delta, adjusted)
            if delta.resolved or delta.verdict == NO_RUNS:
                delta.seeds_needed, delta.seeds_needed_note = None, "resolved" if delta.resolved else ""
                continue
            needed = seeds_needed(
                _values(by_recipe, delta.recipe), _values(by_recipe, delta.base), alpha=ALPHA / max(tests, 1)
            )
            delta.seeds_needed, delta.seeds_needed_note = needed.count, needed.note
    return deltas


def _values(by_recipe: dict[str, Row], name: str) -> list[float]:
    return by_recipe[name].values if name in by_recipe else []


def _delta(step: Recipe, base: Recipe, by_recipe: dict[str, Row]) -> StepDelta:
    values, base_values = _values(by_recipe, step.name), _values(by_recipe, base.name)
    difference = welch(values, base_values)
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
        delta_ci_low=difference.ci_low,
        delta_ci_high=difference.ci_high,
        p_value=difference.p_value,
        p_holm=None,
        claimed=claimed,
        base_claimed=base_claimed,
        claimed_delta=None if claimed is None or base_claimed is None else claimed - base_claimed,
        verdict="",
        seeds_needed=None,
        seeds_needed_note="",
        summary=step.summary,
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

COLUMNS = (
    "step",
    "vs base",
    "n step/base",
    "step %",
    "base %",
    "Δ pp [95% CI]",
    "Holm p",
    "claimed Δ pp",
    "verdict",
    "seeds needed",
)

LEGEND = (
    "Δ = mean(step) − mean(base) over seeds, in percentage points, against the recipe the step names "
    "as its base (not always the row above). 95% CI: Welch's interval of Δ. Holm p: Welch's t-test p, "
    f"Holm-adjusted across the steps of this report. Verdict: helped / hurt where Holm p < {ALPHA} (the "
    "CI then excludes 0 on that side); otherwise not resolved at these n, which is not 'no effect'. "
    "Claimed Δ = the report's claim for the step minus its claim for the base, each from one run. "
    "Seeds needed (unresolved steps): seeds per recipe for an 80% chance to resolve a Δ as large as the "
    "observed one, from the pooled spread, at α = 0.05 / (tests in this report), Holm's strictest step. "
    "How to read it: docs/statistics.md."
)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.2f}"


def table_cells(delta: StepDelta) -> list[str]:
    interval = "" if delta.delta_ci_low is None else f" [{_signed(delta.delta_ci_low)}, {_signed(delta.delta_ci_high)}]"
    if delta.seeds_needed is not None:
        needed = str(delta.seeds_needed)
    else:
        needed = "–" if delta.seeds_needed_note in ("resolved", "") else delta.seeds_needed_note
    return [
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


def to_markdown(deltas: Sequence[StepDelta], *, heading_level: int = 3) -> str:
    """One table per report, each under a heading with its tally, then the legend."""
    parts = []
    for report, family in by_report(deltas).items():
        lines = [
            f"{'#' * heading_level} {report_label(report)} ({report}): {tally(family)}",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "|".join("---" for _ in COLUMNS) + "|",
        ]
        lines += ["| " + " | ".join(table_cells(d)) + " |" for d in family]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts) + "\n" + LEGEND + "\n"


def to_csv(deltas: Sequence[StepDelta]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(StepDelta.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    for delta in deltas:
        writer.writerow(asdict(delta))
    return buffer.getvalue()


def to_json(deltas: Sequence[StepDelta]) -> str:
    return json.dumps([asdict(d) for d in deltas], indent=2)


def to_rich_tables(deltas: Sequence[StepDelta], *, profile: str) -> list:
    """One rich table per report; the legend goes under the last."""
    from rich.table import Table

    tables = []
    groups = by_report(deltas)
    for index, (report, family) in enumerate(groups.items()):
        last = index == len(groups) - 1
        table = Table(
            title=f"Steps of {report_label(report)}, profile '{profile}': {tally(family)}",
            caption=LEGEND if last else None,
            caption_justify="left",
        )
        for column in COLUMNS:
            left = column in ("step", "vs base", "verdict")
            table.add_column(column, justify="left" if left else "right", no_wrap=column in ("step", "vs base"))
        for delta in family:
            cells = table_cells(delta)
            style = {HELPED: "green", HURT: "red"}.get(delta.verdict)
            cells[8] = f"[{style}]{cells[8]}[/{style}]" if style else cells[8]
            table.add_row(*cells)
        tables.append(table)
    return tables
