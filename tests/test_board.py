"""Leaderboard rows as parent-run metrics: every figure of a row, accuracies in %."""

from __future__ import annotations

import dataclasses

import pytest

from harness.identity import RunIdentity
from harness.leaderboard import Row, board_metrics, collect_rows
from harness.publish import leaderboard_table, publish_board_metrics
from harness.tracking import Tracker


def row(**changes) -> Row:
    fields = dict(
        rank=2, recipe="tiny-a", profile="smoke", n=3, mean=0.6, std=0.01, ci_low=0.575, ci_high=0.625,
        minimum=0.59, maximum=0.61, reported=0.62, difference=-0.02, reported_in_ci=False, reported_in_pi=True,
        params=92074,
        train_seconds=30.0, images_per_second=1500.0, epochs_run=3.0, failed=1, seeds=[0, 1, 2],
        values=[0.59, 0.6, 0.61], p_vs_leader=0.03, tied_with_leader=False, report="r.txt", config_hash="abc",
        data_fingerprint="fp", hardware="cpu", commit="abc", finished_at=1_700_000_000_000,
    )  # fmt: skip
    return Row(**{**fields, **changes})


def test_every_figure_of_a_row_is_a_board_metric_accuracies_in_percent():
    metrics = board_metrics(row())
    assert next(iter(metrics)) == "board/mean_pct"  # the compare view's default chart
    assert metrics["board/mean_pct"] == pytest.approx(60.0) and metrics["board/std_pct"] == pytest.approx(1.0)
    assert metrics["board/ci_low_pct"] == pytest.approx(57.5) and metrics["board/ci_high_pct"] == pytest.approx(62.5)
    assert metrics["board/difference_pct"] == pytest.approx(-2.0) and metrics["board/reported_pct"] == 62.0
    assert metrics["board/n"] == 3 and metrics["board/rank"] == 2 and metrics["board/params"] == 92074
    assert metrics["board/p_vs_leader"] == 0.03 and metrics["board/train_seconds"] == 30.0
    assert metrics["board/reported_in_pi"] == 1.0  # the claim check the legend defines, as 1/0
    assert "board/reported_in_ci" not in metrics and "board/tied_with_leader" not in metrics  # legacy names
    assert "board/finished_at" not in metrics and not any("seeds" in k or "values" in k for k in metrics)


def test_a_statistic_added_to_row_later_reaches_the_parent_in_percent():
    """Another change adds a statistic to Row (as the prediction interval and the Holm-adjusted
    comparison with the leader were): no change here is needed."""
    extended = dataclasses.make_dataclass(
        "ExtendedRow", [("bootstrap_low", float | None, None), ("p_vs_base", float | None, None)], bases=(Row,)
    )
    metrics = board_metrics(extended(**dataclasses.asdict(row()), bootstrap_low=0.55, p_vs_base=0.2))
    assert metrics["board/bootstrap_low_pct"] == pytest.approx(55.0) and metrics["board/p_vs_base"] == 0.2
    metrics = board_metrics(row(pi_low=0.52, delta_vs_leader=-0.031, p_vs_leader_holm=0.06))
    assert metrics["board/pi_low_pct"] == pytest.approx(52.0) and metrics["board/delta_vs_leader_pct"] == -3.1
    assert metrics["board/p_vs_leader_holm"] == 0.06


def test_one_seed_logs_no_spread():
    metrics = board_metrics(row(n=1, std=None, ci_low=None, ci_high=None, p_vs_leader=None, tied_with_leader=None))
    assert "board/std_pct" not in metrics and "board/ci_low_pct" not in metrics and metrics["board/n"] == 1


def test_board_metrics_land_on_each_recipes_parent(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parents = {}
    for recipe, accuracies in (("tiny-a", [0.5, 0.6]), ("tiny-b", [0.3, 0.35])):
        for seed, accuracy in enumerate(accuracies):
            identity = RunIdentity(recipe, "smoke", seed, "abc", "fp", "r.txt")
            parents[recipe] = tracker.parent_run(identity, description="")
            child = tracker.child_run(identity, parents[recipe])
            tracker.log_metrics(child, {"accuracy/test": accuracy})
            tracker.log_params(child, {"model.params": "1000"})
            tracker.finish(child)
    rows = collect_rows(tracker, profile="smoke")
    assert publish_board_metrics(tracker, rows) == 2
    first = tracker.get_run(parents["tiny-a"]).data
    assert first.metrics["board/mean_pct"] == pytest.approx(55.0) and first.metrics["board/rank"] == 1
    assert first.params["model.params"] == "1000"
    assert tracker.get_run(parents["tiny-b"]).data.metrics["board/rank"] == 2
    table = leaderboard_table(rows)
    assert list(table)[:3] == ["recipe", "rank", "mean_pct"] and table["recipe"] == ["tiny-a", "tiny-b"]
