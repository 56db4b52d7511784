"""Figures built from MLflow runs and logged back: seed bands on each parent run, the
leaderboard's and the step table's plots and files on a ``leaderboard`` run (one per profile)."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.identity import group_key
from harness.results.agreement import BUDGET_PREFIX
from harness.run.data import CLASS_NAMES
from harness.store.schema import (
    ARTIFACT_CONFUSION_CSV,
    ARTIFACT_LEADERBOARD_TABLE,
    ARTIFACT_SEED_BANDS,
    CURVE_METRICS,
    EPOCH_METRICS,
    PARAM_PARAMS,
    TAG_NOTE,
)
from harness.store.tracking import Tracker

if TYPE_CHECKING:
    from harness.config import BenchConfig
    from harness.results.leaderboard import Row
    from harness.results.steps import StepDelta


def _history(tracker: Tracker, run_id: str) -> dict[str, list[float]]:
    """A seed's learning curves under their Keras names (loss, val_accuracy, …)."""
    return {key: tracker.metric_history(run_id, EPOCH_METRICS[key]) for key in CURVE_METRICS}


def _confusion(tracker: Tracker, run_id: str, scratch: Path) -> np.ndarray | None:
    local = tracker.download_artifact(run_id, ARTIFACT_CONFUSION_CSV, scratch)
    if local is None:  # a run without the artifact simply contributes no matrix
        return None
    with open(local, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return np.array([[int(v) for v in row[1:]] for row in rows])


def publish_parent_plots(tracker: Tracker, parent_run_id: str, group: str, *, title: str) -> list[str]:
    """Learning curves (mean ± std bands) and the mean confusion matrix of a group's seeds."""
    from harness.results.plots import learning_curves_png, mean_confusion_png

    children = tracker.group_children(group)
    if not children:
        return []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        histories = [_history(tracker, c.info.run_id) for c in children]
        made = [learning_curves_png(histories, folder / "learning_curves.png", title=title)]
        confusions = [
            m for c in children if (m := _confusion(tracker, c.info.run_id, folder / c.info.run_id)) is not None
        ]
        if confusions:
            made.append(mean_confusion_png(confusions, CLASS_NAMES, folder / "mean_confusion.png", title=title))
        for path in made:
            tracker.log_artifact(parent_run_id, path, artifact_path=ARTIFACT_SEED_BANDS)
        return [p.name for p in made]


def write_leaderboard_files(rows, folder: Path, *, profile: str, budget: str | None = None) -> list[Path]:
    """leaderboard.{md,csv,json} and the comparison plots, for one profile's rows. A budget
    profile's (``budget``: its line) say so at their top and leave the claims out: no claim
    column, no claims on the seed spread, no claimed-vs-measured plot."""
    from harness.files import output_folder, write_files
    from harness.results import leaderboard
    from harness.results.plots import claimed_vs_measured_png, pareto_png, seed_spread_png

    output_folder(folder, "--plots")
    head = f"{budget}\n\n" if budget else ""
    files = write_files(
        {
            folder / "leaderboard.md": head + leaderboard.to_markdown(rows, budget=budget),
            folder / "leaderboard.csv": leaderboard.to_csv(rows),
            folder / "leaderboard.json": leaderboard.to_json(rows),
        }
    )
    label = f"profile '{profile}'"
    with_values = [r for r in rows if r.n > 0]
    files.append(
        seed_spread_png(
            with_values, folder / "seed_spread.png", title=f"Test accuracy per seed, {label}", budget=budget
        )
    )
    files.append(
        pareto_png(
            with_values, folder / "accuracy_vs_params.png", title=f"Accuracy vs parameters, {label}", budget=budget
        )
    )
    if budget is None:
        files.append(
            claimed_vs_measured_png(
                with_values, folder / "claimed_vs_measured.png", title=f"Claimed vs measured, {label}"
            )
        )
    return files


def publish_leaderboard(tracker: Tracker, rows, folder: Path, *, profile: str, budget: str | None = None) -> list[Path]:
    """Write the leaderboard files to ``folder`` and log them to the profile's leaderboard run,
    with the board as an MLflow table too (its columns sort in the UI's artifact view)."""
    files = write_leaderboard_files(rows, folder, profile=profile, budget=budget)
    run_id = tracker.leaderboard_run(profile)
    for path in files:
        tracker.log_artifact(run_id, path)
    tracker.log_table(run_id, leaderboard_table(rows), ARTIFACT_LEADERBOARD_TABLE)
    return files


def leaderboard_table(rows) -> dict[str, list]:
    """One row per recipe, one column per figure of its leaderboard row (accuracies as fractions)."""
    from harness.results.leaderboard import row_figures

    figures = [row_figures(row) for row in rows]
    names = list(dict.fromkeys(name for figure in figures for name in figure))
    names = ["rank", *(n for n in names if n != "rank")] if "rank" in names else names
    table: dict[str, list] = {"recipe": [row.recipe for row in rows]}
    for name in names:
        table[name] = [figure.get(name) for figure in figures]
    return table


def publish_board_metrics(tracker: Tracker, rows, *, budget: str | None = None) -> int:
    """Each leaderboard row onto its parent run as the ``board/`` metrics (``board_metrics``), and
    the parameter count as the ``model.params`` param: sorting parents by board/1_mean in the UI is
    then the leaderboard. ``rows``: a whole profile's board (what it counts decides the step). A
    budget profile's parents (``budget``: its line, with the measured agreement) carry that line
    at the top of their description, rewritten whenever it changed.

    A parent's figures are logged, all together, only when one of them changed, at step = the
    finished seeds the profile's board counts, and never twice at one step: its charts draw how
    each figure moved as seeds finished (lines, flat where a figure held still), and publishing
    the same board again logs nothing. Returns how many parents' figures changed."""
    import math

    from harness.results.leaderboard import board_metrics

    parents: dict = {}
    for profile in {row.profile for row in rows}:
        parents.update(tracker.parents(profile))
    seeds = {profile: sum(row.n for row in rows if row.profile == profile) for profile in {r.profile for r in rows}}

    def same(a: float, b: float) -> bool:
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=0, abs_tol=1e-9)

    updated = 0
    for row in rows:
        parent = parents.get(group_key(row.recipe, row.profile, row.config_hash, row.data_fingerprint))
        if parent is None:
            continue
        if row.params is not None:
            tracker.log_params(parent.info.run_id, {PARAM_PARAMS: str(row.params)})
        if budget is not None:
            note = parent.data.tags.get(TAG_NOTE, "")
            described = with_budget_line(note, budget)
            if described != note:
                tracker.set_tag(parent.info.run_id, TAG_NOTE, described)
        figures = board_metrics(row)
        latest = {k: v for k, v in Tracker.latest_metrics(parent).items() if k in figures}
        if len(latest) == len(figures) and all(same(latest[k][1], v) for k, v in figures.items()):
            continue
        step = max(seeds[row.profile], 1 + max((s for s, _ in latest.values()), default=0))
        tracker.log_metrics(parent.info.run_id, figures, step=step)
        updated += 1
    return updated


def with_budget_line(description: str, budget: str) -> str:
    """``description`` with ``budget`` as its first paragraph, in place of an earlier budget line."""
    body = (
        description.split("\n\n", 1)[1]
        if description.startswith(BUDGET_PREFIX) and "\n\n" in description
        else description
    )
    return f"{budget}\n\n{body}" if body else budget


def write_steps_files(
    config: BenchConfig,
    rows: list[Row],
    deltas: list[StepDelta],
    folder: Path,
    *,
    profile: str,
    names: Collection[str] | None = None,
    budget: str | None = None,
) -> list[Path]:
    """steps.{md,csv,json} and steps.png (one panel per report) for one profile's step deltas;
    a budget profile's (``budget``: its line) say so at their top and show no claims."""
    from harness.files import output_folder, write_files
    from harness.results import steps
    from harness.results.plots import steps_png

    output_folder(folder, "--plots")
    head = f"{budget}\n\n" if budget else ""
    files = write_files(
        {
            folder / "steps.md": head + steps.to_markdown(deltas, budget=budget),
            folder / "steps.csv": steps.to_csv(deltas),
            folder / "steps.json": steps.to_json(deltas),
        }
    )
    chains = steps.chains(config, names)
    claim = "" if budget else " and the report's claim"
    title = f"Did each step help? Seeds, mean ± 95% CI{claim}, profile '{profile}'"
    files.append(steps_png(chains, rows, deltas, folder / "steps.png", title=title, budget=budget))
    return files


def publish_steps(
    tracker: Tracker,
    config: BenchConfig,
    rows: list[Row],
    deltas: list[StepDelta],
    folder: Path,
    *,
    profile: str,
    names: Collection[str] | None = None,
    budget: str | None = None,
) -> list[Path]:
    """Write the step files to ``folder`` and log them to the profile's leaderboard run."""
    files = write_steps_files(config, rows, deltas, folder, profile=profile, names=names, budget=budget)
    run_id = tracker.leaderboard_run(profile)
    for path in files:
        tracker.log_artifact(run_id, path)
    return files
