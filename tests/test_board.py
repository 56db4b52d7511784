"""Leaderboard rows as parent-run metrics (a few figures, accuracies as fractions) and as the
leaderboard run's table (every figure)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from harness.identity import RunIdentity
from harness.results.leaderboard import Row, board_metrics, collect_rows
from harness.results.publish import leaderboard_table, publish_board_metrics
from harness.store.tracking import Tracker


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


def test_a_parent_carries_a_few_figures_in_reading_order_as_fractions():
    """mean, std, n, CI, PI, Δ vs leader, Holm p, claim: numbered, so MLflow's alphabetical order
    in every view is that order; accuracies as fractions like the children's; bounds cut at 0–1;
    a figure without a value (here the p: this row has none) is NaN, so every parent has all."""
    metrics = board_metrics(row(ci_low=-0.056, ci_high=1.2, pi_low=0.52, pi_high=0.68, delta_vs_leader=-0.031))
    assert list(metrics) == sorted(metrics) == [
        "board/1_mean", "board/2_std", "board/3_n", "board/4_ci_lower", "board/4_ci_upper", "board/5_pi_lower",
        "board/5_pi_upper", "board/6_delta_vs_leader", "board/7_p_vs_leader_holm", "board/8_claimed",
        "board/9_claim_in_pi",
    ]  # fmt: skip
    assert metrics["board/1_mean"] == 0.6 and metrics["board/2_std"] == 0.01 and metrics["board/3_n"] == 3
    assert metrics["board/4_ci_lower"] == 0.0 and metrics["board/4_ci_upper"] == 1.0  # cut, as the terminal's 0*, 100*
    assert metrics["board/5_pi_lower"] == 0.52 and metrics["board/6_delta_vs_leader"] == -0.031
    assert metrics["board/8_claimed"] == 0.62 and metrics["board/9_claim_in_pi"] == 1.0
    assert math.isnan(metrics["board/7_p_vs_leader_holm"])
    assert board_metrics(row(p_vs_leader_holm=0.0612345678))["board/7_p_vs_leader_holm"] == 0.061235


def test_the_leaderboard_table_holds_every_figure_as_fractions_and_a_new_statistic_reaches_it():
    """Another change adds a statistic to Row (as the prediction interval and the Holm-adjusted
    comparison with the leader were): the leaderboard run's table shows it with no change here."""
    extended = dataclasses.make_dataclass(
        "ExtendedRow", [("bootstrap_low", float | None, None), ("p_vs_base", float | None, None)], bases=(Row,)
    )
    [table_row] = [extended(**dataclasses.asdict(row()), bootstrap_low=0.55, p_vs_base=0.2)]
    table = leaderboard_table([table_row])
    assert list(table)[:3] == ["recipe", "rank", "mean"] and table["mean"] == [0.6] and table["bootstrap_low"] == [0.55]
    assert table["ci_low"] == [0.575] and table["reported_in_pi"] == [1.0] and table["params"] == [92074.0]
    assert "reported_in_ci" not in table and "tied_with_leader" not in table and "finished_at" not in table


def test_one_seed_has_no_spread():
    metrics = board_metrics(row(n=1, std=None, ci_low=None, ci_high=None, pi_low=None, pi_high=None))
    assert math.isnan(metrics["board/2_std"]) and math.isnan(metrics["board/4_ci_lower"]) and metrics["board/3_n"] == 1


def store_with_two_recipes(tmp_path, accuracies=(("tiny-a", [0.5, 0.6]), ("tiny-b", [0.45, 0.5]))):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parents = {}
    for recipe, values in accuracies:
        for seed, accuracy in enumerate(values):
            add_seed(tracker, parents, recipe, seed, accuracy)
    return tracker, parents


def add_seed(tracker, parents, recipe, seed, accuracy):
    identity = RunIdentity(recipe, "smoke", seed, "abc", "fp", "r.txt")
    parents[recipe] = tracker.parent_run(identity, description="")
    child = tracker.child_run(identity, parents[recipe])
    tracker.log_metrics(child, {"accuracy/test": accuracy})
    tracker.log_params(child, {"model.params": "1000"})
    tracker.finish(child)


def test_board_metrics_land_on_each_recipes_parent_each_value_once(tmp_path):
    """Published again with nothing new: nothing logged. A recipe gaining a seed: each parent whose
    figures moved logs its figures at a new step (the seeds on the board), so its charts are lines,
    never two values at one step; a figure that lost its value (the p of a recipe that became the
    leader) becomes NaN, not a stale number."""
    tracker, parents = store_with_two_recipes(tmp_path)
    rows = collect_rows(tracker, profile="smoke")
    assert publish_board_metrics(tracker, rows) == 2
    first = tracker.get_run(parents["tiny-a"]).data
    assert first.metrics["board/1_mean"] == pytest.approx(0.55) and first.metrics["board/3_n"] == 2
    assert first.params["model.params"] == "1000"
    assert tracker.get_run(parents["tiny-b"]).data.metrics["board/6_delta_vs_leader"] == pytest.approx(-0.075)
    assert publish_board_metrics(tracker, collect_rows(tracker, profile="smoke")) == 0

    add_seed(tracker, parents, "tiny-b", 2, 0.9)  # tiny-b becomes the leader
    assert publish_board_metrics(tracker, collect_rows(tracker, profile="smoke")) == 2

    def history(recipe, key):
        return [(m.step, m.value) for m in tracker.client.get_metric_history(parents[recipe], key)]

    assert history("tiny-b", "board/3_n") == [(4, 2.0), (5, 3.0)]  # steps: seeds on the board
    assert history("tiny-a", "board/1_mean") == [(4, pytest.approx(0.55)), (5, pytest.approx(0.55))]  # a flat line
    [(_, p_before), (_, p_now)] = history("tiny-b", "board/7_p_vs_leader_holm")
    assert p_before > 0 and math.isnan(p_now)  # the leader has no p against itself
    for recipe in parents:  # no metric of a parent was ever logged twice at one step
        for key in tracker.get_run(parents[recipe]).data.metrics:
            steps = [step for step, _ in history(recipe, key)]
            assert len(steps) == len(set(steps)), (recipe, key, steps)


def test_the_header_names_every_seeds_hardware_and_commit_not_only_each_rows_most_common():
    """A recipe whose seeds ran on two machines or at two commits (a campaign that moved machines)
    names both in the header the README and the files carry: the row's own column keeps the most
    common, the header every one (it named only 'cpu A' and 'aaa' before)."""
    from harness.results.leaderboard import header_line, to_csv

    mixed = row(hardware="cpu A", hardwares=["cpu A", "cpu B"], commit="aaa", commits=["aaa", "bbb"])
    other = row(recipe="tiny-b", hardware="cpu A", hardwares=["cpu A"], commit="ccc", commits=["ccc"])
    header = header_line([mixed, other])
    assert "hardware: cpu A; cpu B;" in header and "code commit aaa, bbb, ccc." in header
    assert "cpu A; cpu B" in to_csv([mixed]) and "aaa bbb" in to_csv([mixed])
    assert "hardware: cpu;" in header_line([row()])  # rows made before these fields: their own column
