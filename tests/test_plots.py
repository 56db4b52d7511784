"""What each figure draws, read off its matplotlib Figure before it is saved: seeds and a t-based
CI (not a box) for three seeds, intervals cut at 0 and 100 %, a Pareto front of one point, a
label on every point, words instead of dots for a one-epoch run, and one house style."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.image
import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.container import BarContainer, ErrorbarContainer

from harness.results import plots
from harness.results.leaderboard import collect_rows
from harness.run.data import CLASS_NAMES
from harness.store.schema import PARAM_PARAMS
from tests.standins import StandInTracker, run


@pytest.fixture(autouse=True)
def close_figures():
    """A *_figure builder hands its Figure to the caller, who closes it; here, after each test."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def rows_of(spec: dict[str, tuple[list[float], int, float | None]]):
    """Leaderboard rows from recipe → (seed accuracies, parameter count, claimed accuracy)."""
    runs = []
    for name, (values, params, claim) in spec.items():
        for seed, value in enumerate(values):
            child = run(name, seed, value, reported=claim)
            child.data.params[PARAM_PARAMS] = str(params)
            runs.append(child)
    return collect_rows(StandInTracker(runs))


def error_segments(container: ErrorbarContainer) -> list[np.ndarray]:
    """The (2 × 2) ends of each error bar: [[x, y] low, [x, y] high]."""
    _, _, bar_lines = container.lines
    return [np.asarray(segment) for segment in bar_lines[0].get_segments()]


def overlapping(figure, texts) -> list[tuple[str, str]]:
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1 :] if box.overlaps(other)]


# Four recipes near chance (their prediction intervals reach below 0 %), one near 100 % (above).
CROWDED = {
    "r001-proyecto-3": ([0.10, 0.02, 0.18], 500_000, 0.10),
    "r001-proyecto-4": ([0.10, 0.11, 0.09], 510_000, 0.101),
    "r001-proyecto-5": ([0.095, 0.1, 0.105], 490_000, 0.099),
    "r001-proyecto-6": ([0.1, 0.1, 0.101], 505_000, 0.1),
    "r003-densenet121-finetune": ([0.99, 0.97, 1.0], 7_000_000, 0.985),
    "r004-step10": ([0.86, 0.862, 0.858], 1_200_000, 0.87),
}

# Three recipes within 5 points of each other: two-digit tick labels, a tight layout.
NARROW = {
    "r004-step10": ([0.8615, 0.8632, 0.8613], 1_200_000, 0.87),
    "r004-step9": ([0.8471, 0.8576, 0.8604], 1_200_000, 0.86),
    "r004-step8": ([0.8345, 0.8437, 0.8458], 900_000, 0.85),
}


def test_seed_spread_draws_each_seed_and_the_mean_with_its_ci_not_a_box():
    rows = rows_of({"three": ([0.80, 0.82, 0.86], 1000, 0.90), "one": ([0.50], 1000, None)})
    axes = plots.seed_spread_figure(rows, title="t").axes[0]

    assert not axes.patches  # no boxes: three values have no quartiles to draw
    points = sorted(x for c in axes.collections if isinstance(c, PathCollection) for x in c.get_offsets()[:, 0])
    assert points == pytest.approx([50, 80, 82, 86, 90])  # four seeds and one claim
    [interval] = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]  # none for n=1
    [segment] = error_segments(interval)
    three = rows[0]
    assert segment[:, 0] == pytest.approx([100 * three.ci_low, 100 * three.ci_high])
    assert segment[:, 1] == pytest.approx([0, 0])  # on the leader's line, at the top
    assert [t.get_text() for t in axes.get_yticklabels()] == ["three (n=3)", "one (n=1)"]
    assert "mean, 95% CI of the mean (t)" in [t.get_text() for t in axes.get_legend().get_texts()]


def test_per_class_std_bars_stop_at_0_and_100_and_the_label_says_so():
    seeds = [np.eye(10, dtype=int) * 100 for _ in range(3)]
    seeds[2][0] = 0
    seeds[2][0, :2] = (80, 20)  # airplane: 100, 100, 80 % → mean 93.3 ± 11.5
    for confusion, right in zip(seeds, (0, 0, 20), strict=True):
        confusion[1] = 0
        confusion[1, 1:3] = (right, 100 - right)  # automobile: 0, 0, 20 % → mean 6.7 ± 11.5

    figure = plots.mean_confusion_figure(seeds, CLASS_NAMES, title="t")
    bars = next(ax for ax in figure.axes if ax.get_xlabel().startswith("per-class"))
    [container] = [c for c in bars.containers if isinstance(c, BarContainer)]
    segments = error_segments(container.errorbar)
    spread = np.std([100, 100, 80], ddof=1)
    assert segments[0][:, 0] == pytest.approx([280 / 3 - spread, 100])
    assert segments[1][:, 0] == pytest.approx([0, 20 / 3 + spread])
    assert all(0 <= x <= 100 for segment in segments for x in segment[:, 0])
    assert "cut at 0 and 100" in bars.get_xlabel() and "n=3" in bars.get_xlabel()


def test_pareto_front_of_one_point_is_drawn_and_every_point_is_labelled():
    rows = rows_of(
        {
            "small-best": ([0.90, 0.91], 1_000, None),
            "mid": ([0.80, 0.82], 10_000, None),
            "big": ([0.70, 0.71], 100_000, None),
            "big-twin": ([0.705, 0.70], 101_000, None),
            "no-count": ([0.5, 0.5], 0, None),
        }
    )
    figure = plots.pareto_figure(rows, title="t")
    axes = figure.axes[0]

    [front] = [line for line in axes.lines if line.get_label().startswith("Pareto front")]
    assert list(front.get_xdata()) == [1_000] and front.get_marker() not in (None, "", "None", " ")
    assert any(t.get_text().startswith("Pareto front") for t in axes.get_legend().get_texts())
    drawn = [r for r in rows if r.params]
    assert sorted(t.get_text() for t in axes.texts) == sorted(str(r.rank) for r in drawn)
    assert not overlapping(figure, axes.texts)  # big and big-twin sit almost on one spot
    key = [t.get_text() for t in figure.texts]
    assert all(f"{r.rank:>4}  {r.recipe}" in key for r in drawn)
    assert any("no parameter count: 1 recipe" in t for t in key)


def test_pareto_front_is_what_no_smaller_recipe_beats():
    assert plots.pareto_front([(100, 50.0), (10, 60.0), (1000, 70.0), (1000, 65.0), (500, 55.0)]) == [1, 2]


def test_claimed_vs_measured_cuts_prediction_intervals_and_labels_every_point():
    rows = rows_of(CROWDED)
    assert min(r.pi_low for r in rows) < 0 < 1 < max(r.pi_high for r in rows)  # the case in point
    figure = plots.claimed_vs_measured_figure(rows, title="t")
    axes = figure.axes[0]

    [intervals] = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    ends = np.concatenate([segment[:, 1] for segment in error_segments(intervals)])
    assert ends.min() == pytest.approx(0) and ends.max() == pytest.approx(100)
    assert axes.get_ylim()[0] >= -1 and axes.get_ylim()[1] <= 101
    labels = axes.texts
    assert sorted(t.get_text() for t in labels) == sorted(str(r.rank) for r in rows)  # none left off
    assert all(t.get_fontsize() <= plots.SMALL for t in labels)
    assert not overlapping(figure, labels)  # four recipes near chance, one on top of another
    key = [t.get_text() for t in figure.texts]
    assert all(f"{r.rank:>4}  {r.recipe}" in key for r in rows)
    assert any(plots.CLIPPED_NOTE in t for t in key)


def one_epoch(loss: float, accuracy: float) -> dict[str, list[float]]:
    return {"loss": [loss], "val_loss": [loss + 0.1], "accuracy": [accuracy], "val_accuracy": [accuracy - 0.05]}


def test_learning_curves_of_one_epoch_say_so_instead_of_drawing_dots():
    figure = plots.learning_curves_figure([one_epoch(2.0, 0.2), one_epoch(2.2, 0.3)], title="t")
    for axes in figure.axes:
        assert not axes.lines and not axes.collections and axes.get_legend() is None
        [text] = axes.texts
        assert text.get_text().startswith(plots.SHORT_RUN_TEXT)
        assert text.get_position() == (0.5, 0.5) and text.get_ha() == "center" and text.get_va() == "center"
    assert "train 0.25 (n=2)" in figure.axes[1].texts[0].get_text()  # the one epoch's mean accuracy


def test_learning_curves_bands_stay_within_0_and_1_and_say_n():
    histories = [
        {"loss": [1.0, 0.5, 0.1], "accuracy": [0.5, 0.95, 1.0]},
        {"loss": [1.2, 0.6], "accuracy": [0.4, 0.7]},
    ]
    loss, accuracy = plots.learning_curves_figure(histories, title="t").axes
    [band] = [c for c in accuracy.collections if isinstance(c, PolyCollection)]
    assert band.get_paths()[0].vertices[:, 1].max() <= 1.0
    assert [line.get_label() for line in accuracy.lines] == ["train (n=2, 1 at epoch 3)"]
    assert len(loss.lines) == 1 and not loss.texts


def builders():
    """Every figure of the module, each on small inputs: (name, positional arguments)."""
    rows = rows_of(CROWDED)
    confusion = np.eye(10, dtype=int) * 90 + 1
    chain = [SimpleNamespace(name=r.recipe, reported=SimpleNamespace(test_accuracy=r.reported)) for r in rows[:3]]
    return {
        "confusion_matrix": (confusion, CLASS_NAMES),
        "mean_confusion": ([confusion, confusion], CLASS_NAMES),
        "learning_curves": ([{"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]}],),
        "seed_spread": (rows,),
        "pareto": (rows,),
        "claimed_vs_measured": (rows,),
        "claimed_vs_measured-narrow": (rows_of(NARROW),),
        "steps": ({"004_x.txt": chain}, rows, []),
    }


STYLE_KEYS = ("axes.facecolor", "axes.edgecolor", "font.size", "figure.dpi", "savefig.dpi", "axes.grid")


@pytest.mark.parametrize("name", list(builders()))
def test_every_figure_in_the_house_style_and_nothing_leaks(name, tmp_path):
    arguments = builders()[name]
    name = name.split("-")[0]
    plots.confusion_matrix_figure(*builders()["confusion_matrix"], title="warm-up")  # selects the Agg backend
    before = {key: matplotlib.rcParams[key] for key in STYLE_KEYS}

    path = getattr(plots, f"{name}_png")(*arguments, tmp_path / f"{name}.png", title="t")
    figure = getattr(plots, f"{name}_figure")(*arguments, title="t")

    assert {key: matplotlib.rcParams[key] for key in STYLE_KEYS} == before  # set only while drawing
    assert figure.dpi == plots.DPI
    axes = figure.axes[0]
    assert matplotlib.colors.to_hex(axes.spines["left"].get_edgecolor()) == "#cccccc"  # seaborn whitegrid
    assert matplotlib.colors.to_hex(axes.get_facecolor()) == "#ffffff"
    figure.canvas.draw()
    page = figure.bbox
    for text in (t for t in (axes.title, axes.xaxis.label, axes.yaxis.label) if t.get_text()):  # none cut off
        box = text.get_window_extent()
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, text.get_text()
    height, width, _ = matplotlib.image.imread(path).shape
    assert (width, height) == pytest.approx(tuple(v * plots.DPI for v in figure.get_size_inches()), abs=1)


@pytest.mark.parametrize("name", ["seed_spread", "pareto", "claimed_vs_measured"])
def test_an_empty_board_draws_a_message_without_warnings(name, recwarn):
    figure = getattr(plots, f"{name}_figure")([], title="t")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    assert figure.axes[0].texts  # says why the plot is empty


def test_axes_fit_the_data_claims_past_them_sit_at_the_edge_and_chance_is_drawn_where_reached():
    """Issue 28: claims of 83-87 % stretched a panel whose runs lie at 60-70 % into a band; no
    figure showed chance; whiskers meant a CI, a std or a PI in different figures."""
    rows = rows_of({"near": ([0.60, 0.62, 0.64], 1000, 0.87), "low": ([0.11, 0.12, 0.125], 2000, 0.11)})
    axes = plots.seed_spread_figure(rows[:1], title="t").axes[0]
    low, high = axes.get_xlim()
    near = rows[0]
    assert 100 * near.ci_low - 2 < low < 100 * near.ci_low and 100 * near.ci_high < high < 70  # not stretched to 87
    [note] = [t for t in axes.texts if t.get_text() == "87.0"]  # the claim, written at the right edge
    assert note.xy[0] == pytest.approx(high)
    assert not [line for line in axes.lines if line.get_xdata()[0] == plots.CHANCE]  # 10 % is off this axis

    axes = plots.seed_spread_figure(rows, title="t").axes[0]
    assert axes.get_xlim()[0] < plots.CHANCE  # runs near chance: the axis reaches it, and the line is drawn
    assert plots.CHANCE_LABEL in [t.get_text() for t in axes.get_legend().get_texts()]

    pareto = plots.pareto_figure(rows, title="t").axes[0]
    [container] = [c for c in pareto.containers if isinstance(c, ErrorbarContainer)]
    ends = sorted(tuple(segment[:, 1]) for segment in error_segments(container))
    expected = sorted((100 * r.ci_low, 100 * r.ci_high) for r in rows)
    assert np.allclose(ends, expected)  # the 95% CI of the mean, as in the other figures, not ± std
    assert "recipe: mean, 95% CI of the mean" in [t.get_text() for t in pareto.get_legend().get_texts()]
