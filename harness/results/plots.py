"""Figures logged to MLflow (seaborn, PNG): a run's confusion matrix and learning curves, a
group's seed bands, a board's seed spread, accuracy against parameters, claimed against measured,
and the step panels.

Each ``*_png`` function writes the Figure its ``*_figure`` twin returns, so a test reads what is
drawn (lines, labels, error-bar extents) before anything is saved. Every figure is built and saved
under one house style (``harness.results.figure_style``) at its ``DPI``; accuracies are in percent,
and an interval is never drawn past 0 % or 100 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.results.figure_style import CHANCE as CHANCE  # read as plots.CHANCE too
from harness.results.figure_style import (
    CHANCE_LABEL,
    CLIPPED_NOTE,
    MARKER_SIZE,
    NOTE_COLOUR,
    SMALL,
    chance_line,
    claims_at_edge,
    clipped_errors,
    count,
    fitted_limits,
    footnote,
    label_points,
    log_axis_labels,
    numbered_key,
    plot_and_key,
    pyplot,
    save,
    styled,
    titled,
)
from harness.results.figure_style import DPI as DPI  # read as plots.DPI too

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _row_normalised(confusion) -> np.ndarray:
    """Each row divided by its total: the share of a true class given to each prediction."""
    counts = np.asarray(confusion, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)


def _confusion_heatmap(axes, normalised: np.ndarray, class_names: Sequence[str]) -> None:
    import seaborn as sns

    sns.heatmap(
        normalised * 100,
        annot=True,
        fmt=".0f",
        annot_kws={"fontsize": SMALL + 1},
        cmap="Blues",
        vmin=0,
        vmax=100,
        square=True,
        xticklabels=class_names,
        yticklabels=class_names,
        cbar_kws={"label": "% of true class"},
        ax=axes,
    )
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")


@styled
def confusion_matrix_figure(confusion: Sequence[Sequence[int]], class_names: Sequence[str], *, title: str) -> Figure:
    """Row-normalised confusion matrix (recall per class) annotated in percent."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(8, 6.5))
    _confusion_heatmap(axes, _row_normalised(confusion), class_names)
    axes.set_title(title)
    figure.tight_layout()
    return figure


def confusion_matrix_png(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, *, title: str
) -> Path:
    """``confusion_matrix_figure`` as a PNG; the raw counts go in the CSV beside it."""
    return save(confusion_matrix_figure(confusion, class_names, title=title), path)


def _epoch_bands(series: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Per epoch: the mean and std across the seeds that ran it, and how many did."""
    length = max(len(s) for s in series)
    means, stds, counts = [], [], []
    for index in range(length):
        values = [s[index] for s in series if len(s) > index]
        means.append(float(np.mean(values)))
        stds.append(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
        counts.append(len(values))
    return np.arange(1, length + 1), np.array(means), np.array(stds), counts


SHORT_RUN_TEXT = "fewer than 2 epochs: no curve to draw"


@styled
def learning_curves_figure(histories: list[dict[str, list[float]]], *, title: str) -> Figure:
    """Mean ± std across seeds per epoch of loss and accuracy (train and validation).

    Seeds that stopped early contribute only to the epochs they ran; each legend entry says n.
    A panel whose seeds ran fewer than 2 epochs says so in words (with the one epoch's means)
    instead of drawing points on an axis one epoch wide. Accuracy bands stay within [0, 1] and
    loss bands above 0.
    """
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, panels = plt.subplots(1, 2, figsize=(11, 4.2))
    for axes, metric in zip(panels, ("loss", "accuracy"), strict=True):
        curves = []
        for key, colour, label in ((metric, "tab:blue", "train"), (f"val_{metric}", "tab:orange", "validation")):
            series = [h[key] for h in histories if h.get(key)]
            if series:
                curves.append((series, colour, label))
        axes.set_ylabel(metric)
        if not curves or max(len(s) for series, _, _ in curves for s in series) < 2:
            one_epoch = [
                f"{label} {np.mean([s[0] for s in series]):.3g} (n={len(series)})" for series, _, label in curves
            ]
            message = SHORT_RUN_TEXT if curves else "no epochs logged: no curve to draw"
            if one_epoch:
                message += "\nepoch 1, mean: " + ", ".join(one_epoch)
            axes.text(0.5, 0.5, message, transform=axes.transAxes, ha="center", va="center", color=NOTE_COLOUR)
            axes.set_xticks([])
            axes.set_yticks([])
            continue
        ceiling = 1.0 if metric == "accuracy" else np.inf
        for series, colour, label in curves:
            epochs, means, stds, counts = _epoch_bands(series)
            seeds = (
                f"n={counts[0]}" if counts[0] == counts[-1] else f"n={counts[0]}, {counts[-1]} at epoch {epochs[-1]}"
            )
            axes.plot(epochs, means, color=colour, label=f"{label} ({seeds})", marker="o" if len(epochs) < 4 else None)
            axes.fill_between(
                epochs,
                np.clip(means - stds, 0, ceiling),
                np.clip(means + stds, 0, ceiling),
                color=colour,
                alpha=0.25,
                linewidth=0,
            )
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend()
    figure.suptitle(f"{title}: mean ± std across seeds")
    figure.tight_layout()
    return figure


def learning_curves_png(histories: list[dict[str, list[float]]], path: Path, *, title: str) -> Path:
    """``learning_curves_figure`` as a PNG."""
    return save(learning_curves_figure(histories, title=title), path)


@styled
def mean_confusion_figure(confusions: list[np.ndarray], class_names: Sequence[str], *, title: str) -> Figure:
    """Mean row-normalised confusion matrix across seeds, and per-class accuracy ± std with the
    bars cut at 0 and 100 % (a class near 100 % would otherwise show an impossible spread)."""
    plt = pyplot()

    stack = np.stack([_row_normalised(counts) for counts in confusions])
    per_class = np.stack([np.diag(m) for m in stack]) * 100
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [1.25, 1]})
    _confusion_heatmap(left, stack.mean(axis=0), class_names)
    n = len(confusions)
    left.set_title(f"mean normalised confusion (n={n} seeds)")
    means = per_class.mean(axis=0)
    errors = None
    if n > 1:
        spread = per_class.std(axis=0, ddof=1)
        errors, _ = clipped_errors(means, means - spread, means + spread)
    right.barh(list(class_names), means, xerr=errors, color="tab:blue", alpha=0.8, capsize=3)
    right.invert_yaxis()
    right.set_xlim(0, 101)  # a point past 100 %: room for a cap there
    right.set_xlabel(
        f"per-class accuracy % (mean ± std, n={n} seeds; bars cut at 0 and 100)"
        if errors is not None
        else "per-class accuracy % (n=1)"
    )
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def mean_confusion_png(confusions: list[np.ndarray], class_names: Sequence[str], path: Path, *, title: str) -> Path:
    """``mean_confusion_figure`` as a PNG."""
    return save(mean_confusion_figure(confusions, class_names, title=title), path)


@styled
def seed_spread_figure(rows, *, title: str, budget: str | None = None) -> Figure:
    """Each recipe's seeds as points and its mean with the t-based 95% CI of the mean, leader on
    top, and the report's single-run claim as a red cross (not on a budget profile's figure,
    ``budget`` its line); the axis fits the measured values, a claim past it is an arrow at the
    edge with its value, and chance (10 %) is a dotted line where the axis reaches it. With three seeds a box plot would draw quartiles that are not there; a recipe with
    one seed shows its point only (one value has no interval)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(9.5, 0.34 * max(len(rows), 1) + 1.9))
    rng = np.random.default_rng(0)  # the jitter only; fixed so the figure is the same every time
    handles: dict[str, Any] = {}
    notes = []
    for y, row in enumerate(rows):
        values = 100 * np.asarray(row.values, dtype=float)
        if len(values):
            handles["one seed"] = axes.scatter(
                values, y + rng.uniform(-0.18, 0.18, size=len(values)), s=18, color="tab:blue", alpha=0.6, zorder=2
            )
        if row.n >= 2 and row.mean is not None and row.ci_low is not None and row.ci_high is not None:
            errors, clipped = clipped_errors([100 * row.mean], [100 * row.ci_low], [100 * row.ci_high])
            handles["mean, 95% CI of the mean (t)"] = axes.errorbar(
                [100 * row.mean], [y], xerr=errors, fmt="D", ms=5, color="black", capsize=4, zorder=3
            )
            if clipped and CLIPPED_NOTE not in notes:
                notes.append(CLIPPED_NOTE)
    if any(r.n < 2 for r in rows):
        notes.append("n<2: seeds only, no interval")
    if not rows:
        axes.text(0.5, 0.5, "no finished runs", transform=axes.transAxes, ha="center", va="center")
    measured = [100 * v for row in rows for v in row.values]
    measured += [100 * b for row in rows if row.n >= 2 for b in (row.ci_low, row.ci_high) if b is not None]
    if measured:
        limits = fitted_limits(measured)
        axes.set_xlim(*limits)
        claims = [(y, 100 * row.reported) for y, row in enumerate(rows) if row.reported is not None]
        if claims and budget is None:
            positions, values = zip(*claims, strict=True)
            handles["report's claim (one run; ▸ past the axis)"] = claims_at_edge(
                axes, positions, values, limits, vertical=False, marker="x", s=30, color="tab:red", zorder=4
            )
        if (chance := chance_line(axes, limits, vertical=False)) is not None:
            handles[CHANCE_LABEL] = chance
    axes.set_yticks(range(len(rows)), [f"{r.recipe} (n={r.n})" for r in rows])
    axes.set_ylim(max(len(rows), 1) - 0.5, -0.5)  # leader on top
    axes.set_xlabel("test accuracy %")
    axes.set_title(titled(title, budget))
    if handles:
        axes.legend(list(handles.values()), list(handles), loc="upper left", bbox_to_anchor=(1.01, 1))
    footnote(figure, notes)
    figure.tight_layout(rect=(0, 0.03 if notes else 0, 1, 1))
    return figure


def seed_spread_png(rows, path: Path, *, title: str, budget: str | None = None) -> Path:
    """``seed_spread_figure`` as a PNG."""
    return save(seed_spread_figure(rows, title=title, budget=budget), path)


def pareto_front(points: Sequence[tuple[int, float]]) -> list[int]:
    """Indices of the (parameters, accuracy) points no other point beats with as few parameters,
    fewest parameters first."""
    front, best = [], -np.inf
    for index in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if points[index][1] > best:
            front.append(index)
            best = points[index][1]
    return front


def mean_with_whiskers(axes, x, rows, interval: str, label: str, notes: list[str]):
    """Each row's mean (%) at ``x``, its whiskers its ``interval`` ("ci": of the mean, "pi": one
    run) cut at 0–100 % (a note says so when one is); returns means, lows, highs and the errors."""
    means = np.array([100 * r.mean for r in rows])
    bounds = [(getattr(r, f"{interval}_low"), getattr(r, f"{interval}_high"), r.mean) for r in rows]
    lows = np.array([100 * (low if low is not None else mean) for low, _, mean in bounds])
    highs = np.array([100 * (high if high is not None else mean) for _, high, mean in bounds])
    errors, clipped = clipped_errors(means, lows, highs)
    if clipped:
        notes.append(CLIPPED_NOTE)
    axes.errorbar(
        x, means, yerr=errors, fmt="o", ms=MARKER_SIZE, color="tab:blue", ecolor="0.6", capsize=3, label=label
    )
    return means, lows, highs, errors


@styled
def pareto_figure(rows, *, title: str, budget: str | None = None) -> Figure:
    """Mean accuracy against parameter count (log scale), error bars = the 95% CI of the mean (as in
    every figure here but claimed vs measured; none for one seed), chance (10 %) where the axis reaches it, the
    Pareto front drawn (ringed points joined by a line, so a front of one point shows too). Each
    point carries its leaderboard rank; the key beside the plot names it (front in red)."""
    points = [r for r in rows if r.params and r.mean is not None]
    figure, axes, plot_fraction = plot_and_key([r.recipe for r in points], plot_width=9, plot_height=6)
    left_off = len(rows) - len(points)
    notes = [f"not drawn, no parameter count: {count(left_off, 'recipe')}"] if left_off else []
    axes.set_xlabel("parameters")
    axes.set_ylabel("test accuracy % (mean over seeds)")
    axes.set_title(titled(title, budget, width=80))
    if points:
        params = np.array([r.params for r in points], dtype=float)
        means, lows, highs, _ = mean_with_whiskers(
            axes, params, points, "ci", "recipe: mean, 95% CI of the mean", notes
        )
        front = pareto_front(list(zip(params, means, strict=True)))
        axes.plot(
            params[front],
            means[front],
            "-",
            color="tab:red",
            marker="o",
            ms=11,
            mfc="none",
            mew=1.5,
            label="Pareto front: most accurate for its size",
        )
        limits = fitted_limits([*lows, *highs, *means])
        axes.set_ylim(*limits)
        chance_line(axes, limits, vertical=True)
        axes.set_xscale("log")
        log_axis_labels(axes.xaxis)
        axes.legend(loc="best")
        figure.tight_layout(rect=(0, 0.03 if notes else 0, plot_fraction, 1))
        axes.set_xlim(axes.get_xlim())
        axes.set_ylim(axes.get_ylim())
        on_front = {points[i].rank for i in front}
        label_points(
            axes,
            params,
            means,
            [str(r.rank) for r in points],
            ["tab:red" if r.rank in on_front else "0.15" for r in points],
        )
        numbered_key(figure, plot_fraction, [r.rank for r in points], [r.recipe for r in points], on_front)
    else:
        axes.text(0.5, 0.5, "no recipe with a parameter count", transform=axes.transAxes, ha="center")
        figure.tight_layout(rect=(0, 0.03 if notes else 0, plot_fraction, 1))
    footnote(figure, notes)
    return figure


def pareto_png(rows, path: Path, *, title: str, budget: str | None = None) -> Path:
    """``pareto_figure`` as a PNG; ``budget``: a budget profile's line under the title."""
    return save(pareto_figure(rows, title=title, budget=budget), path)


@styled
def claimed_vs_measured_figure(rows, *, title: str) -> Figure:
    """Each report's single-run claim against our mean with its 95% prediction interval (where one
    more run would land: the interval a single-run claim is checked against, so this figure's
    whiskers alone are not the CI of the mean; its legend says so), cut at 0 and 100 %;
    the diagonal is agreement. Each point carries its leaderboard rank; the key beside names it."""
    points = [r for r in rows if r.reported is not None and r.mean is not None]
    figure, axes, plot_fraction = plot_and_key([r.recipe for r in points], plot_width=7.5, plot_height=7.5)
    left_off = len(rows) - len(points)
    notes = [f"not drawn, no claim: {count(left_off, 'recipe')}"] if left_off else []
    axes.set_xlabel("claimed test accuracy % (report, one run)")
    axes.set_ylabel("measured test accuracy % (this harness)")
    axes.set_title(title)
    if points:
        claimed = np.array([100 * r.reported for r in points])
        label = "mean, 95% prediction interval (one run)"
        measured, _, _, errors = mean_with_whiskers(axes, claimed, points, "pi", label, notes)
        # The view stops a point past 0 and 100 %: room for a marker there, never for a bar.
        lo = max(-1.0, min(claimed.min(), (measured - errors[0]).min()) - 2)
        hi = min(101.0, max(claimed.max(), (measured + errors[1]).max()) + 2)
        axes.plot([lo, hi], [lo, hi], "--", color="tab:red", label="measured = claimed")
        axes.set_xlim(lo, hi)
        axes.set_ylim(lo, hi)
        chance_line(axes, (lo, hi), vertical=True)
        axes.legend(loc="upper left")
        figure.tight_layout(rect=(0, 0.03 if notes else 0, plot_fraction, 1))
        label_points(axes, claimed, measured, [str(r.rank) for r in points], ["0.15"] * len(points))
        numbered_key(figure, plot_fraction, [r.rank for r in points], [r.recipe for r in points], set())
    else:
        axes.text(0.5, 0.5, "no recipe with a claim", transform=axes.transAxes, ha="center")
        figure.tight_layout(rect=(0, 0.03 if notes else 0, plot_fraction, 1))
    footnote(figure, notes)
    return figure


def claimed_vs_measured_png(rows, path: Path, *, title: str) -> Path:
    """``claimed_vs_measured_figure`` as a PNG."""
    return save(claimed_vs_measured_figure(rows, title=title), path)


VERDICT_MARKS = {"helped": "▲ helped", "hurt": "▼ hurt"}


def _short_names(names: Sequence[str]) -> list[str]:
    """Names without a first part they all share ('r004-step2' → 'step2', 'r000-proyecto-1' →
    'proyecto-1'), so a panel's x labels stay legible."""
    firsts = {name.split("-", 1)[0] for name in names}
    if len(firsts) != 1 or any("-" not in name for name in names):
        return list(names)
    return [name.split("-", 1)[1] for name in names]


def _wrapped(name: str, width: int = 14) -> str:
    """A recipe name broken after hyphens into lines of at most ``width`` characters (a longer
    part stays whole), so the x labels of neighbouring steps do not run into each other."""
    lines = [""]
    for part in name.split("-"):
        piece = part if lines[-1] == "" else f"-{part}"
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines[-1] += "-"
            lines.append(part)
        else:
            lines[-1] += piece
    return "\n".join(lines)


@styled
def steps_figure(chains: dict[str, list], rows, deltas, *, title: str, budget: str | None = None) -> Figure:
    """One panel per report (titled by its name): its recipes in file order, each seed as a point,
    the mean with its 95% CI (cut at 0 and 100 %), the report's single-run claim as a red marker
    (not on a budget profile's figure, ``budget`` its line), and under each step its verdict
    against the step it is compared with. The axis fits the measured values; a claim past it is
    an arrow at the edge with its value; chance (10 %) is dotted where the axis reaches it.

    ``chains`` maps a report to its recipes (``harness.results.steps.chains``), ``rows`` are the
    leaderboard rows of one profile and ``deltas`` the ``harness.results.steps.StepDelta`` of its steps.
    """
    plt = pyplot()
    from harness.results.steps import report_label

    by_recipe = {row.recipe: row for row in rows}
    by_step = {delta.recipe: delta for delta in deltas}
    widest = max((len(chain) for chain in chains.values()), default=1)
    figure, panels = plt.subplots(
        len(chains) or 1,
        1,
        figsize=(max(8.0, 1.15 * widest + 2.5), 3.9 * max(len(chains), 1)),
        squeeze=False,
        layout="constrained",
    )
    rng = np.random.default_rng(0)  # the jitter only; fixed so the figure is the same every time
    for axes, (report, chain) in zip(panels[:, 0], chains.items(), strict=False):
        names = [recipe.name for recipe in chain]
        short = dict(zip(names, _short_names(names), strict=True))
        seeds_label = mean_label = claim_label = None
        measured, claims = [], []
        for x, recipe in enumerate(chain):
            row = by_recipe.get(recipe.name)
            if row is not None and row.values:
                jitter = rng.uniform(-0.12, 0.12, size=len(row.values))
                seeds_label = axes.scatter(
                    x + jitter, [100 * v for v in row.values], s=14, color="tab:blue", alpha=0.55, zorder=2
                )
                low = row.ci_low if row.ci_low is not None else row.mean
                high = row.ci_high if row.ci_high is not None else row.mean
                errors, _ = clipped_errors([100 * row.mean], [100 * low], [100 * high])
                measured += [100 * v for v in row.values] + [100 * low, 100 * high]
                mean_label = axes.errorbar(
                    [x + 0.25], [100 * row.mean], yerr=errors, fmt="s", color="black", capsize=4, zorder=3
                )
            if recipe.reported.test_accuracy is not None and budget is None:
                claims.append((x - 0.25, 100 * recipe.reported.test_accuracy))
        chance_label = None
        if measured:
            limits = fitted_limits(measured)
            axes.set_ylim(*limits)
            if claims:
                positions, values = zip(*claims, strict=True)
                claim_label = claims_at_edge(
                    axes, positions, values, limits, vertical=True, marker="D", s=36, color="tab:red", zorder=4
                )
            chance_label = chance_line(axes, limits, vertical=True)
        labels = []
        for recipe in chain:
            delta = by_step.get(recipe.name)
            if delta is None:
                labels.append(f"{_wrapped(short[recipe.name])}\n(start)")
                continue
            base = short.get(delta.base, delta.base)
            if delta.verdict.startswith("not resolved"):
                verdict = "? not resolved"
            else:
                verdict = VERDICT_MARKS.get(
                    delta.verdict, "n<2" if delta.verdict.startswith("insufficient") else "no runs"
                )
            labels.append(f"{_wrapped(short[recipe.name])}\nvs {_wrapped(base)}:\n{verdict}")
        axes.set_xticks(range(len(chain)), labels, fontsize=SMALL + 1)
        for tick, recipe in zip(axes.get_xticklabels(), chain, strict=True):
            verdict = by_step[recipe.name].verdict if recipe.name in by_step else ""
            tick.set_color({"helped": "tab:green", "hurt": "tab:red"}.get(verdict, "0.2"))
        axes.set_xlim(-0.6, max(len(chain), 2) - 0.4)
        axes.set_ylabel("test accuracy %")
        axes.set_title(report_label(report), loc="left")
        axes.grid(axis="x", visible=False)
        handles = [
            (seeds_label, "one seed"),
            (mean_label, "mean, 95% CI of the mean"),
            (claim_label, "report's claim (one run; ▲▼ past the axis)"),
            (chance_label, CHANCE_LABEL),
        ]
        handles = [(h, label) for h, label in handles if h is not None]
        if handles:
            axes.legend(
                [h for h, _ in handles],
                [label for _, label in handles],
                loc="upper left",
                bbox_to_anchor=(1.0, 1.0),
            )
    figure.suptitle(titled(title, budget, width=120))
    return figure


def steps_png(chains: dict[str, list], rows, deltas, path: Path, *, title: str, budget: str | None = None) -> Path:
    """``steps_figure`` as a PNG."""
    return save(steps_figure(chains, rows, deltas, title=title, budget=budget), path)
