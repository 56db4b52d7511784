"""Figures logged to MLflow (seaborn, PNG). Matplotlib runs headless (Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_png(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, *, title: str
) -> Path:
    """Row-normalised confusion matrix (recall per class) annotated in percent, raw counts in
    the CSV beside it."""
    import seaborn as sns

    plt = _pyplot()
    counts = np.asarray(confusion, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    figure, axes = plt.subplots(figsize=(8, 6.5))
    sns.heatmap(
        normalised * 100,
        annot=True,
        fmt=".0f",
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
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
