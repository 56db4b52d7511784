"""What a parent run shows is the sweep's business, not the executor's: the executor hands each
finished seed and each closed group to its caller, and ``ParentFigures`` writes the parents' board
metrics and seed bands, tagging a parent where they fail and never failing the sweep on them."""

from __future__ import annotations

import pytest

from harness.config import load_config
from harness.identity import Variant
from harness.results.parents import ParentFigures
from harness.store.connection import StoreError
from harness.store.schema import TAG_BOARD_ERROR, TAG_PLOT_ERROR
from harness.store.tracking import Tracker
from harness.sweep.executors import LocalExecutor
from harness.sweep.plan import SweepSettings, plan
from tests.standins import log_runs
from tests.test_budget import stand_in  # noqa: F401  the stand-in worker fixture


def test_the_executor_reports_seeds_and_groups_and_writes_no_figure(tmp_path, test_config, stand_in, monkeypatch):  # noqa: F811
    python, _ = stand_in
    monkeypatch.setenv("STAND_IN_EPOCHS", "1")
    monkeypatch.setenv("STAND_IN_SECONDS", "0.01")
    config = load_config(test_config)
    specs = plan(
        config, [config.recipe("tiny-a"), config.recipe("tiny-b")], profile="smoke", seeds=[0, 1], data_fingerprint="fp"
    )
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    moved, closed = [], []
    executor = LocalExecutor(config, tracker, SweepSettings(profile="smoke"), python=str(python))
    report = executor.sweep(
        specs, on_board_moved=moved.append, on_group_done=lambda spec, parent: closed.append((spec.recipe.name, parent))
    )
    assert [o.status for o in report.outcomes] == ["FINISHED"] * 4
    assert moved == ["smoke"] * 4  # each finished seed moves the board
    assert sorted(name for name, _ in closed) == ["tiny-a", "tiny-b"]  # each group once, when its seeds have ended
    for _, parent in closed:  # the executor wrote no figure of its own on a parent
        assert not [key for key in tracker.get_run(parent).data.metrics if key.startswith("board/")]
        assert not tracker.client.list_artifacts(parent)


def test_parent_figures_write_the_board_and_tag_what_fails(tmp_path, test_config, monkeypatch):
    config = load_config(test_config)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    log_runs(tracker, config, {"tiny-a": [0.5, 0.6], "tiny-b": [0.4, 0.45]})
    figures = ParentFigures(config, tracker, Variant())
    parents = tracker.parent_runs("smoke").values()

    figures.update_boards("smoke")
    assert [tracker.get_run(parent).data.metrics["board/3_n"] for parent in parents] == [2, 2]

    def broken(*args, **kwargs):
        raise ValueError("no board today")

    monkeypatch.setattr("harness.results.leaderboard.collect_rows", broken)
    figures.update_boards("smoke")  # a board that cannot be built is a tag on each parent, not an error
    assert [tracker.get_run(parent).data.tags[TAG_BOARD_ERROR] for parent in parents] == ["no board today"] * 2

    def store_down(*args, **kwargs):
        raise StoreError("search runs", OSError("disk I/O error"))

    monkeypatch.setattr("harness.results.leaderboard.collect_rows", store_down)
    with pytest.raises(StoreError):  # the store's own failure stops the sweep (the executor says it once)
        figures.update_boards("smoke")

    monkeypatch.setattr("harness.results.publish.publish_parent_plots", broken)
    [spec] = plan(config, [config.recipe("tiny-a")], profile="smoke", seeds=[0], data_fingerprint="synthetic-data")
    parent = tracker.parent_runs("smoke")[spec.identity.group]
    figures.publish_plots(spec, parent)  # a plot that fails is a tag on its parent
    assert tracker.get_run(parent).data.tags[TAG_PLOT_ERROR] == "no board today"
