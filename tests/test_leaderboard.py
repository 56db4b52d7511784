"""Leaderboard rows from child runs: failed and non-finite seeds, order, claim check, leader comparison.

The runs are stand-ins shaped like MLflow's (``tests/standins.py``): the statistics are tested
without a store.
"""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest
from scipy import stats

from harness.results import leaderboard
from harness.results.leaderboard import collect_rows, only_recipes
from harness.results.stats import holm_levels
from harness.results.verdicts import compare_with_leader
from tests.standins import StandInTracker, board, run, runs_of


def test_non_finite_accuracy_is_a_failed_seed():
    runs = runs_of("a", [0.50, float("nan"), 0.54, float("inf")]) + [run("a", 4, None, status="FAILED")]
    [row] = collect_rows(StandInTracker(runs))
    assert row.n == 2 and row.failed == 3
    assert row.values == [0.50, 0.54] and row.seeds == [0, 2]
    assert row.mean == pytest.approx(0.52) and row.maximum == 0.54
    assert "2 (+3 failed)" in leaderboard.to_markdown([row])


def test_a_seed_that_failed_then_finished_is_not_counted_failed():
    """Seed 1 crashed, then was retrained and finished: the table said "2 (+1 failed)" after a
    sweep in which every seed ended trained. Failures are counted per seed, not per run."""
    runs = runs_of("a", [0.50, 0.54]) + [run("a", 1, None, status="FAILED"), run("a", 2, None, status="FAILED")]
    runs += [run("a", 2, None, status="FAILED")]  # seed 2 failed twice: one failed seed
    [row] = collect_rows(StandInTracker(runs))
    assert row.n == 2 and row.failed == 1
    assert "2 (+1 failed)" in leaderboard.to_markdown([row])


def test_a_seed_finished_twice_counts_once():
    """Two sweeps that raced before claims existed can leave two FINISHED runs of one identity:
    the earlier to end is the seed's value, the other is ignored."""
    twice = run("a", 1, 0.90)
    twice.info.end_time += 10  # ended after the first run of seed 1
    twice.info.run_id = "a-1-late"
    [row] = collect_rows(StandInTracker(runs_of("a", [0.50, 0.54]) + [twice]))
    assert row.n == 2 and row.values == [0.50, 0.54]


def test_ranking_does_not_depend_on_input_order():
    runs = (
        runs_of("b-tied", [0.60, 0.62, 0.64])
        + runs_of("a-tied", [0.64, 0.60, 0.62])  # the same mean as b-tied: the name decides
        + runs_of("c", [0.70, 0.71, 0.72])
        + runs_of("d", [float("nan")])
        + runs_of("e", [0.30])
    )
    orders = []
    for attempt in range(5):
        shuffled = runs[:]
        random.Random(attempt).shuffle(shuffled)
        orders.append(leaderboard.to_json(collect_rows(StandInTracker(shuffled))))
    assert len(set(orders)) == 1
    rows = json.loads(orders[0])
    assert [(r["rank"], r["recipe"]) for r in rows] == [(1, "c"), (2, "a-tied"), (3, "b-tied"), (4, "e"), (5, "d")]
    assert rows[4]["n"] == 0 and rows[4]["failed"] == 1 and rows[4]["leader_verdict"] == "no finished run"


def test_claim_is_checked_against_the_prediction_interval():
    values = [0.60, 0.62, 0.64]
    # Outside the CI of the mean [0.570, 0.670], inside the PI [0.520, 0.720]: a claim that fits.
    [row] = collect_rows(StandInTracker(runs_of("a", values, reported=0.69)))
    n, mean, std = 3, np.mean(values), np.std(values, ddof=1)
    pi = stats.t.interval(0.95, n - 1, loc=mean, scale=std * np.sqrt(1 + 1 / n))
    assert (row.pi_low, row.pi_high) == (pytest.approx(pi[0]), pytest.approx(pi[1]))
    assert row.reported_in_pi is True and row.reported_in_ci is False
    assert row.difference == pytest.approx(mean - 0.69)
    assert "69.00 ✓ (-7.00)" in leaderboard.to_markdown([row])
    [far] = collect_rows(StandInTracker(runs_of("a", values, reported=0.75)))
    assert far.reported_in_pi is False and "75.00 ✗ (-13.00)" in leaderboard.to_markdown([far])
    [single] = collect_rows(StandInTracker(runs_of("a", [0.6], reported=0.75)))
    assert single.reported_in_pi is None and single.pi_low is None


def test_leader_comparison_is_welch_with_holm_and_a_confidence_interval():
    values = {
        "leader": [0.80, 0.82, 0.81],
        "close": [0.79, 0.82, 0.80],  # p ≈ 0.57: not resolved
        "far": [0.60, 0.61, 0.62],  # resolved
        "two": [0.70, 0.74],  # n = 2
        "unequal": [0.75, 0.77, 0.76, 0.78, 0.74],  # unequal n
        "stuck": [0.10, 0.10, 0.10],  # no spread, the leader has some
    }
    rows = board(values)
    compared = [name for name in values if name != "leader"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tests = {name: stats.ttest_ind(values[name], values["leader"], equal_var=False) for name in compared}
    raw = [tests[name].pvalue for name in compared]
    # Holm by hand: sorted ascending, p_(i) × (m − i + 1), running maximum, capped at 1.
    order = np.argsort(raw)
    expected_holm, running = {}, 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (len(raw) - position) * raw[index]))
        expected_holm[compared[index]] = running
    levels = dict(zip(compared, holm_levels(raw), strict=True))
    for name in compared:
        # Welch's interval at the level Holm tested the row at: it excludes 0 exactly where resolved
        row, interval = rows[name], tests[name].confidence_interval(1 - levels[name])
        assert row.delta_ci_confidence == pytest.approx(1 - levels[name])
        assert (row.delta_ci_low > 0 or row.delta_ci_high < 0) == (row.leader_verdict == "resolved")
        assert row.leader == "leader"
        assert row.delta_vs_leader == pytest.approx(np.mean(values[name]) - np.mean(values["leader"]))
        assert (row.delta_ci_low, row.delta_ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
        assert row.p_vs_leader == pytest.approx(tests[name].pvalue, rel=1e-9)
        assert row.p_vs_leader_holm == pytest.approx(expected_holm[name], rel=1e-9)
        assert row.tied_with_leader is bool(expected_holm[name] >= 0.05)
    assert rows["close"].leader_verdict == "not resolved" and rows["far"].leader_verdict == "resolved"
    assert rows["leader"].leader_verdict == "leader" and rows["leader"].p_vs_leader is None
    cells = {row.recipe: leaderboard.table_cells(row) for row in rows.values()}
    assert cells["close"][0].endswith(" ≈") and not cells["far"][0].endswith("≈")
    assert cells["close"][8] == (
        f"{100 * rows['close'].delta_vs_leader:+.2f} [{100 * rows['close'].delta_ci_low:+.2f}, "
        f"{100 * rows['close'].delta_ci_high:+.2f}] p={rows['close'].p_vs_leader_holm:.2f}"
    )


def test_a_leader_with_one_seed_does_not_switch_the_comparison_off():
    rows = board({"lucky": [0.95], "best": [0.80, 0.82, 0.81], "next": [0.60, 0.61, 0.62]})
    assert rows["lucky"].rank == 1 and rows["best"].rank == 2
    assert rows["lucky"].leader_verdict == "insufficient (n<2)" and rows["lucky"].p_vs_leader is None
    assert rows["best"].leader_verdict == "leader"
    assert rows["next"].leader == "best" and rows["next"].leader_verdict == "resolved"
    assert rows["next"].p_vs_leader == pytest.approx(
        stats.ttest_ind([0.60, 0.61, 0.62], [0.80, 0.82, 0.81], equal_var=False).pvalue
    )
    assert leaderboard.table_cells(rows["lucky"])[8] == "n<2: not compared"
    far = board({"best": [0.80, 0.82, 0.81], "far": [0.10, 0.11, 0.12]})["far"]
    assert far.p_vs_leader_holm < 0.001 and leaderboard.table_cells(far)[8].endswith(" p<0.001")


def test_identical_leader_and_row_are_not_resolved():
    rows = board({"a": [0.1, 0.1, 0.1], "b": [0.1, 0.1]})
    assert rows["b"].delta_vs_leader == 0 and rows["b"].p_vs_leader == 1.0
    assert rows["b"].leader_verdict == "not resolved"
    assert (rows["b"].delta_ci_low, rows["b"].delta_ci_high) == (0.0, 0.0)


def test_no_row_with_two_seeds_means_no_comparison():
    rows = board({"a": [0.5], "b": [0.4]})
    assert {row.leader_verdict for row in rows.values()} == {"insufficient (n<2)"}
    assert {row.leader for row in rows.values()} == {""} and rows["b"].delta_vs_leader is None


def test_a_suite_is_compared_within_itself():
    rows = list(board({"x-1": [0.80, 0.82, 0.81], "y-1": [0.60, 0.61, 0.63], "y-2": [0.60, 0.62, 0.61]}).values())
    suite = only_recipes(rows, {"y-1", "y-2"})
    assert [r.recipe for r in suite] == ["y-1", "y-2"] and [r.rank for r in suite] == [1, 2]
    assert suite[0].leader_verdict == "leader" and suite[1].leader == "y-1"
    assert suite[1].p_vs_leader_holm == pytest.approx(suite[1].p_vs_leader)  # a family of one


def test_compare_with_leader_on_rows_built_by_hand():
    """Rows built directly (as other tools do) are compared the same way."""
    rows = list(board({"l": [0.80, 0.82, 0.81], "c": [0.6, 0.1, 0.1]}).values())
    for row in rows:
        row.leader_verdict = ""
    compare_with_leader(rows)
    assert [row.leader_verdict for row in rows] == ["leader", "not resolved"]


def test_every_format_carries_the_new_columns():
    rows = list(board({"a": [0.80, 0.82, 0.81], "b": [0.60, 0.61, 0.62]}).values())
    markdown = leaderboard.to_markdown(rows)
    assert "| # | recipe | n | acc % mean ± std | 95% CI of mean | 95% PI, one run |" in markdown
    assert "where one more run would land" in markdown and "Holm-adjusted" in markdown
    assert "not resolved from the leader" in markdown
    header = leaderboard.to_csv(rows).splitlines()[0].split(",")
    for field in ("pi_low", "pi_high", "reported_in_pi", "delta_vs_leader", "delta_ci_low", "p_vs_leader_holm"):
        assert field in header
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(leaderboard.to_rich_table(rows, title="t", wide=True))
    assert "95% PI, one run" in console.export_text()


def test_interval_bounds_past_0_or_100_percent_are_shown_cut_and_marked():
    """Two seeds 20% and 49% give a t-interval of the mean of about [-150, 218] %: shown as
    [0*, 100*], while the row keeps the computed bounds."""
    [row] = collect_rows(StandInTracker(runs_of("a", [0.20, 0.49])))
    assert row.ci_low < 0 and row.ci_high > 1
    markdown = leaderboard.to_markdown([row])
    assert "[0*, 100*]" in markdown and "-149" not in markdown and "0* / 100*" in markdown


def test_cpu_and_gpu_runs_are_apart_unless_pooled():
    """A recipe's GPU runs have their own config hash (and group): ranked on their own, and
    pooled with the CPU runs into one row only when asked (bench leaderboard --device any)."""
    from harness.store.schema import TAG_CONFIG_HASH, TAG_GROUP, TAG_IDENTITY

    cpu = runs_of("a", [0.50, 0.52, 0.54])
    gpu = runs_of("a", [0.60, 0.62])
    for seed, child in enumerate(gpu):
        child.data.tags.update({TAG_CONFIG_HASH: "g", TAG_GROUP: "a-p-gpu", TAG_IDENTITY: f"a-p-gpu-{seed}"})
        child.info.run_id += "-gpu"
    tracker = StandInTracker(cpu + gpu)
    [on_cpu] = collect_rows(tracker, profile="p", current_hashes={"a": "h"})
    [on_gpu] = collect_rows(tracker, profile="p", current_hashes={"a": "g"})
    [both] = collect_rows(tracker, profile="p", current_hashes={"a": "h"}, pooled_hashes={"a": "g"})
    assert (on_cpu.n, on_gpu.n, both.n) == (3, 2, 5)
    assert both.mean == pytest.approx(np.mean([0.50, 0.52, 0.54, 0.60, 0.62]))


def test_stale_groups_are_left_out_or_ranked_apart_and_marked():
    """Given current hashes, a group with another hash (an edited recipe) or of a recipe the
    config no longer has is never a row of today's board; asked for, each is a row of its own,
    marked and ranked apart, so a stale row never leads or is compared with current ones."""
    from harness.store.schema import TAG_CONFIG_HASH, TAG_GROUP, TAG_IDENTITY

    old = runs_of("a", [0.90, 0.91, 0.92])  # the recipe before it was edited: far better
    for seed, child in enumerate(old):
        child.data.tags.update({TAG_CONFIG_HASH: "old", TAG_GROUP: "a-p-old", TAG_IDENTITY: f"a-p-old-{seed}"})
        child.info.run_id += "-old"
    tracker = StandInTracker(
        old + runs_of("a", [0.50, 0.52, 0.54]) + runs_of("b", [0.60, 0.61, 0.62]) + runs_of("gone", [0.7, 0.7])
    )
    current = {"a": "h", "b": "h"}
    rows = collect_rows(tracker, profile="p", current_hashes=current)
    assert [(r.recipe, r.n, r.stale) for r in rows] == [("b", 3, False), ("a", 3, False)]
    assert rows[0].leader_verdict == "leader"
    marked = collect_rows(tracker, profile="p", current_hashes=current, include_stale=True)
    assert [(r.recipe, r.rank, r.stale) for r in marked] == [
        ("b", 1, False),
        ("a", 2, False),
        ("a", 1, True),
        ("gone", 2, True),
    ]
    assert marked[1].leader == "b" and marked[2].leader == "a" and marked[2].config_hash == "old"
    assert "a (stale old)" in leaderboard.to_markdown(marked) and '"stale": true' in leaderboard.to_json(marked)
