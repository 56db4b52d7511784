"""How every figure looks and reads (``harness.results.plots`` draws them): one house style (fonts,
DPI, headless Matplotlib), accuracies in percent with intervals cut at 0 % and 100 %, axes fitted to
the values measured, a claim past an axis drawn at its edge with its value, the chance line, point
labels placed clear of each other, and numbered keys beside a plot."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


DPI = 110  # dots per inch of every PNG


FONT_SCALE = 0.85  # seaborn's "notebook" context scaled: 10 pt labels, 9 pt ticks and legends


SMALL = 7  # points: point labels, keys and footnotes


MARKER_SIZE = 5  # points: a recipe's mean in the comparison plots


KEY_LINE = 1.3 * SMALL  # points from one line of a numbered key to the next


NOTE_COLOUR = "0.35"


CLIPPED_NOTE = "intervals cut at 0–100 %"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def house_style() -> Iterator[None]:
    """The one look of every figure: seaborn's white grid, notebook context, ``DPI``. Matplotlib's
    settings are restored on leaving, so drawing a figure never changes how another one looks."""
    plt = pyplot()
    import seaborn as sns

    with plt.rc_context():
        sns.set_theme(
            style="whitegrid",
            context="notebook",
            font_scale=FONT_SCALE,
            rc={"figure.dpi": DPI, "savefig.dpi": DPI, "legend.frameon": False, "axes.titlesize": "medium"},
        )
        yield


def styled(build: Callable[..., Figure]) -> Callable[..., Figure]:
    @functools.wraps(build)
    def styled(*args: Any, **kwargs: Any) -> Figure:
        with house_style():
            return build(*args, **kwargs)

    return styled


def save(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` whole or not at all (``harness.files.replacing``)."""
    from harness.files import replacing

    plt = pyplot()
    try:
        with house_style(), replacing(path) as temporary:
            figure.savefig(temporary, dpi=DPI, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(figure)
    return path


def clipped_errors(centres, lows, highs, *, floor: float = 0.0, ceiling: float = 100.0) -> tuple[np.ndarray, bool]:
    """Error-bar lengths (2 × N: below, above) for intervals [low, high] around ``centres``, each
    end cut to [floor, ceiling]: an accuracy below 0 % or above 100 % cannot happen, so a bar that
    reached there would draw an impossible value. Also says whether any end was cut."""
    centres = np.asarray(centres, dtype=float)
    lows, highs = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    cut_lows, cut_highs = np.clip(lows, floor, ceiling), np.clip(highs, floor, ceiling)
    clipped = bool(np.any(cut_lows != lows) or np.any(cut_highs != highs))
    return np.vstack([centres - cut_lows, cut_highs - centres]), clipped


CHANCE = 10.0  # % : one of ten classes at random


CHANCE_LABEL = "chance (10 %)"


def fitted_limits(values: Sequence[float], *, pad: float = 0.06, least: float = 2.0) -> tuple[float, float]:
    """Axis limits that fit the measured ``values`` (seeds, means, interval ends, in %) with a
    margin, never past -1 and 101 %: claims far from the data no longer squash it into a band."""
    low, high = float(np.min(values)), float(np.max(values))
    margin = max((high - low) * pad, least / 2)
    return max(low - margin, -1.0), min(high + margin, 101.0)


def claims_at_edge(axes: Axes, positions, claims, limits: tuple[float, float], *, vertical: bool, **style) -> Any:
    """The report's claims as markers: inside ``limits`` where they are, outside them at the edge
    as an arrow pointing off the axis, with the claimed value written beside it. Returns a handle
    for the legend (None where there was no claim)."""
    low, high = limits
    handle = None
    for position, claim in zip(positions, claims, strict=True):
        if low <= claim <= high:  # the legend shows the plain marker where there is one
            handle = axes.scatter(*([[claim], [position]] if not vertical else [[position], [claim]]), **style)
            continue
        edge = high if claim > high else low
        marker = ("^" if claim > high else "v") if vertical else (">" if claim > high else "<")
        xy = (position, edge) if vertical else (edge, position)
        edge_marker = axes.scatter([xy[0]], [xy[1]], **{**style, "marker": marker}, clip_on=False)
        handle = handle or edge_marker
        offset = (0, -9 if claim > high else 9) if vertical else (-9 if claim > high else 9, 0)
        axes.annotate(
            f"{claim:.1f}",
            xy,
            xytext=offset,
            textcoords="offset points",
            fontsize=SMALL,
            color=style.get("color", "tab:red"),
            ha="center" if vertical else ("right" if claim > high else "left"),
            va=("top" if claim > high else "bottom") if vertical else "center",
        )
    return handle


def chance_line(axes: Axes, limits: tuple[float, float], *, vertical: bool) -> Any:
    """A dashed line at 10 % where the axis shows it (a model at chance); None elsewhere."""
    if not limits[0] <= CHANCE <= limits[1]:
        return None
    line = axes.axhline if vertical else axes.axvline
    return line(CHANCE, color="0.45", linestyle=":", linewidth=1.2, zorder=1, label=CHANCE_LABEL)


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def titled(title: str, budget: str | None, width: int = 100) -> str:
    """A figure's title, and a budget profile's line under it (wrapped): the figure then shows no
    report claim, as its outputs check none."""
    import textwrap

    return title if budget is None else title + "\n" + "\n".join(textwrap.wrap(budget, width))


def footnote(figure: Figure, lines: Sequence[str]) -> None:
    if lines:
        figure.text(0.01, 0.005, "; ".join(lines), fontsize=SMALL, color=NOTE_COLOUR, ha="left", va="bottom")


# Where a point's label may go, tried in order: (dx, dy) in points from the point, and the
# label's alignment. Eight places around the point, nearest first.
LABEL_PLACES = (
    (5, 3, "left", "bottom"),
    (5, -3, "left", "top"),
    (-5, 3, "right", "bottom"),
    (-5, -3, "right", "top"),
    (0, 6, "center", "bottom"),
    (0, -6, "center", "top"),
    (8, 0, "left", "center"),
    (-8, 0, "right", "center"),
)


def label_points(axes: Axes, xs, ys, labels: Sequence[str], colours: Sequence[str]) -> None:
    """Label every point, each at the first of ``LABEL_PLACES`` where it overlaps no label already
    placed and no point (the least crowded one where every place is taken). Call once the axes'
    limits and the figure's layout are final: places are judged on the drawn page."""
    from matplotlib.transforms import Bbox

    renderer = axes.figure.canvas.get_renderer()
    radius = MARKER_SIZE / 2 * axes.figure.dpi / 72  # pixels
    centres = axes.transData.transform(np.column_stack([xs, ys]))
    markers = [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius) for x, y in centres]
    placed = []
    for index in np.lexsort((np.asarray(ys), np.asarray(xs))):
        best = None
        for dx, dy, horizontal, vertical in LABEL_PLACES:
            text = axes.annotate(
                labels[index],
                (xs[index], ys[index]),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=horizontal,
                va=vertical,
                fontsize=SMALL,
                color=colours[index],
            )
            box = text.get_window_extent(renderer)
            crowding = sum(box.overlaps(other) for other in [*placed, *markers])
            if best is None or crowding < best[0]:
                if best is not None:
                    best[1].remove()
                best = (crowding, text, box)
            else:
                text.remove()
            if crowding == 0:
                break
        placed.append(best[2])


def numbered_key(
    figure: Figure, left: float, numbers: Sequence[int], names: Sequence[str], highlighted: set[int]
) -> None:
    """The names behind the numbers drawn at the points, one line each, in the figure's right
    margin from ``left`` (a fraction of its width); ``highlighted`` numbers in red."""
    from matplotlib.transforms import offset_copy

    lines = [("rank  recipe", "0.15", "bold")] + [
        (f"{number:>4}  {name}", "tab:red" if number in highlighted else "0.15", "normal")
        for number, name in sorted(zip(numbers, names, strict=True))
    ]
    for line, (text, colour, weight) in enumerate(lines):
        below = offset_copy(figure.transFigure, figure, y=-line * KEY_LINE, units="points")
        figure.text(
            left, 0.97, text, transform=below, fontsize=SMALL, family="monospace", weight=weight, color=colour, va="top"
        )


def plot_and_key(names: Sequence[str], *, plot_width: float, plot_height: float) -> tuple[Figure, Axes, float]:
    """A figure with the plot on the left and, right of ``plot_width`` inches, room for the
    numbered key of ``names`` (SMALL-point monospace: a glyph is 0.6 em wide). Returns the
    figure, the plot's axes and the fraction of the width the plot takes."""
    plt = pyplot()
    key_width = 0.4 + (max((len(name) for name in names), default=0) + 6) * 0.6 * SMALL / 72
    key_height = 0.8 + (len(names) + 1) * KEY_LINE / 72
    figure, axes = plt.subplots(figsize=(plot_width + key_width, max(plot_height, key_height)))
    return figure, axes, plot_width / (plot_width + key_width)


def log_axis_labels(axis) -> None:
    """Ticks at 1, 2 and 5 of each decade, written 20k, 1.5M: a log axis of parameter counts
    that reads without counting powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def readable(value: float, _position) -> str:
        for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= size:
                return f"{value / size:g}{suffix}"
        return f"{value:g}"

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(readable))
    axis.set_minor_formatter(NullFormatter())
