"""Budget profiles say what they are: the budget line on every output, no claim checked, and the
agreement of their ranking with `full` (Spearman, Kendall, bootstrap over seeds, steps)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from harness.cli import main
from harness.config import load_config
from harness.results import agreement, leaderboard
from tests.conftest import REAL_CONFIG
from tests.standins import board, log_runs

CONFIG = """
[data]
validation_size = 100
split_seed = 7

[profiles.full]
description = "as the reports trained"

[profiles.small]
description = "a budget"
max_epochs = 2
train_size = 300
bn_recalibration_images = 256

[[recipe]]
name = "a"
architecture = "r004_step1"
summary = "start"
source = { report = "004_x.txt", section = "1)" }
reported = { test_accuracy = 0.70 }
training = { optimizer = "adam", learning_rate = 0.001, loss = "sparse_categorical_crossentropy", batch_size = 64, epochs = 30 }

[[recipe]]
name = "b"
base = "a"
summary = "second"
source = { report = "004_x.txt", section = "2)" }
reported = { test_accuracy = 0.75 }
training = { batch_size = 32 }

[[recipe]]
name = "c"
base = "a"
previous = "b"
summary = "third"
source = { report = "004_x.txt", section = "3)" }
training = { batch_size = 16 }

[[recipe]]
name = "d"
base = "a"
previous = "c"
summary = "fourth"
source = { report = "004_x.txt", section = "4)" }
training = { batch_size = 8 }
"""

FULL = {"a": [0.60, 0.61, 0.62], "b": [0.70, 0.71, 0.69], "c": [0.66, 0.65, 0.67], "d": [0.80, 0.79, 0.81]}
SMALL = {"a": [0.20, 0.22, 0.21], "b": [0.30, 0.29, 0.31], "c": [0.35, 0.36, 0.34], "d": [0.40, 0.41, 0.39]}


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "benchmarks.toml"
    path.write_text(CONFIG)
    return load_config(path)


def test_rank_correlations_match_scipy(config):
    measured = agreement.agreement(config, list(board(SMALL).values()), list(board(FULL).values()), profile="small")
    x = [np.mean(SMALL[n]) for n in "abcd"]
    y = [np.mean(FULL[n]) for n in "abcd"]
    assert measured.recipes == ("a", "b", "c", "d") and measured.n == 4
    assert measured.spearman == pytest.approx(stats.spearmanr(x, y).statistic)  # 0.8: c and b swap
    assert measured.kendall == pytest.approx(stats.kendalltau(x, y).statistic)
    assert measured.spearman_low <= measured.spearman <= measured.spearman_high
    assert measured.kendall_low <= measured.kendall <= measured.kendall_high
    # Over recipes: Fisher z with Bonett-Wright's standard error, wide at n = 4
    half = 1.959963984540054 * np.sqrt((1 + 0.8**2 / 2) / 1)
    assert measured.spearman_recipes_low == pytest.approx(np.tanh(np.arctanh(0.8) - half))
    assert measured.spearman_recipes_high == pytest.approx(np.tanh(np.arctanh(0.8) + half))
    again = agreement.agreement(config, list(board(SMALL).values()), list(board(FULL).values()), profile="small")
    assert again == measured  # a fixed bootstrap seed: the same runs give the same figures


def test_steps_that_agree_in_sign_and_verdict(config):
    measured = agreement.agreement(config, list(board(SMALL).values()), list(board(FULL).values()), profile="small")
    # b vs a: + at both; c vs b: + at small, − at full; d vs c: + at both
    assert (measured.steps, measured.signs_agree) == (3, 2)
    assert measured.verdicts == 3 and 0 <= measured.verdicts_agree <= 3
    assert "same sign 2/3" in measured.sentence()


def test_too_few_recipes_is_said_not_computed(config):
    measured = agreement.agreement(
        config, list(board({"a": SMALL["a"]}).values()), list(board(FULL).values()), profile="small"
    )
    assert measured.n == 1 and measured.spearman is None
    assert "not measured, 1 recipe(s) have runs at both" in measured.sentence()


def test_the_budget_line_derives_from_the_profile():
    config = load_config(REAL_CONFIG)
    assert agreement.budget_line(config, "full") is None
    line = agreement.budget_line(config, "cpu")
    assert line.startswith(
        "Budget profile `cpu`: at most 3 epochs on 2,500 images: ranks early learning, not the reports' training."
    )
    assert "not measured" in line
    assert "at most 3 epochs on 10,000 images" in agreement.budget_line(config, "quick")
    assert "10% of each recipe's epochs on 40,000 images" in agreement.budget_line(config, "tenth")
    assert {name for name, p in config.profiles.items() if p.is_budget} == {"quick", "cpu", "tenth", "micro", "smoke"}


def _store(tmp_path, config):
    from harness.store.tracking import Tracker

    store = f"sqlite:///{tmp_path / 'm.db'}"
    tracker = Tracker(store)
    log_runs(tracker, config, FULL, profile="full")
    log_runs(tracker, config, SMALL, profile="small")
    return store


def test_a_budget_profiles_outputs_say_so_and_check_no_claim(tmp_path, config):
    store = _store(tmp_path, config)
    runner = CliRunner()
    common = ["--config", str(config.path), "--tracking-uri", store]
    small = runner.invoke(main, [*common, "leaderboard", "--profile", "small", "--format", "markdown"])
    assert small.exit_code == 0, small.output
    first = small.stdout.splitlines()[0]
    assert first.startswith("Budget profile `small`: at most 2 epochs on 300 images: ranks early learning")
    assert "Spearman ρ = +0.80" in first and "over the 4 recipes run at both" in first
    assert "claimed" not in small.stdout and "✗" not in small.stdout and "✓" not in small.stdout
    table = runner.invoke(main, [*common, "leaderboard", "--profile", "small"])
    words = " ".join(table.stdout.split())
    assert table.exit_code == 0 and "Budget profile `small`" in words and "claimed" not in words
    full = runner.invoke(main, [*common, "leaderboard", "--profile", "full", "--format", "markdown"])
    assert "Budget profile" not in full.stdout and "claimed % (Δ pp)" in full.stdout
    records = json.loads(runner.invoke(main, [*common, "leaderboard", "--profile", "small", "--format", "json"]).stdout)
    assert {r["reported_in_pi"] for r in records} == {None} and {r["reported"] for r in records} == {0.70, 0.75, None}

    steps = runner.invoke(main, [*common, "steps", "--profile", "small", "--format", "markdown"])
    assert steps.exit_code == 0, steps.output
    assert steps.stdout.startswith("Budget profile `small`") and "claimed Δ" not in steps.stdout
    assert "| c | b |" in steps.stdout  # against the step it was built from, not its base a
    first_steps = runner.invoke(
        main, [*common, "steps", "--profile", "small", "--against", "first", "--format", "markdown"]
    )
    assert "| c | a |" in first_steps.stdout and "vs first" in first_steps.stdout

    plots = runner.invoke(main, [*common, "leaderboard", "--profile", "small", "--plots", str(tmp_path / "p")])
    assert plots.exit_code == 0, plots.output
    assert not (tmp_path / "p" / "claimed_vs_measured.png").exists() and (tmp_path / "p" / "seed_spread.png").exists()
    assert (tmp_path / "p" / "leaderboard.md").read_text().startswith("Budget profile `small`")

    readme = tmp_path / "README.md"
    readme.write_text("<!-- leaderboard:small:start -->\n<!-- leaderboard:small:end -->\n")
    updated = runner.invoke(main, [*common, "leaderboard", "--profile", "small", "--update-readme", str(readme)])
    assert updated.exit_code == 0, updated.output
    assert readme.read_text().splitlines()[1].startswith("Budget profile `small`")


def test_budget_plots_carry_the_line_and_no_claim():
    from harness.results.plots import seed_spread_figure, steps_figure

    rows = list(board(SMALL).values())
    for row in rows:
        row.reported = 0.7
    line = "Budget profile `small`: at most 2 epochs on 300 images: ranks early learning, not the reports' training."
    figure = seed_spread_figure(rows, title="t", budget=line)
    axes = figure.axes[0]
    assert "ranks early learning" in axes.get_title()
    assert not [t for t in axes.get_legend().get_texts() if t.get_text().startswith("report's claim")]
    with_claims = seed_spread_figure(rows, title="t")
    assert [t for t in with_claims.axes[0].get_legend().get_texts() if t.get_text().startswith("report's claim")]
    import matplotlib.pyplot as plt

    plt.close(figure)
    plt.close(with_claims)
    config = load_config(REAL_CONFIG)
    chain = {"004_ad376a161039476f.txt": [config.recipe("r004-step1")]}
    figure = steps_figure(chain, [], [], title="t", budget=line)
    assert "ranks early learning" in figure.get_suptitle()
    plt.close(figure)


def test_bench_agreement_reads_full_from_the_store_and_from_results(tmp_path, config):
    from harness.store.tracking import Tracker

    store = _store(tmp_path, config)
    runner = CliRunner()
    common = ["--config", str(config.path), "--tracking-uri", store]
    shown = runner.invoke(main, [*common, "agreement", "--profile", "small", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.stdout)
    assert record["recipes"] == ["a", "b", "c", "d"] and record["spearman"] == pytest.approx(0.8)
    assert record["budget"].startswith("Budget profile `small`")
    table = runner.invoke(main, [*common, "agreement", "--profile", "small"])
    words = " ".join(table.stdout.split())
    assert table.exit_code == 0 and "Spearman ρ = +0.80" in words and "4 recipes with runs at both" in words
    not_budget = runner.invoke(main, [*common, "agreement", "--profile", "full"])
    assert not_budget.exit_code != 0 and "not a budget" in not_budget.output

    # `full` known only from published run records (another machine's runs): the same agreement
    published = runner.invoke(main, [*common, "leaderboard", "--profile", "full", "--publish"])
    assert published.exit_code == 0, published.output
    assert len(list((tmp_path / "results" / "runs" / "full").rglob("seed-*.json"))) == 12
    other = f"sqlite:///{tmp_path / 'other.db'}"
    log_runs(Tracker(other), config, SMALL, profile="small")
    elsewhere = runner.invoke(
        main,
        ["--config", str(config.path), "--tracking-uri", other, "agreement", "--profile", "small", "--format", "json"],
    )
    assert elsewhere.exit_code == 0, elsewhere.output
    assert json.loads(elsewhere.stdout)["spearman"] == pytest.approx(0.8)
    alone = runner.invoke(
        main,
        ["--config", str(config.path), "--tracking-uri", other, "agreement", "--profile", "small", "--source", "store"],
    )
    assert "not measured, 0 recipe(s) have runs at both" in " ".join(alone.stdout.split())


def test_parent_runs_of_a_budget_profile_start_with_the_line(tmp_path, config):
    from harness.results.publish import publish_board_metrics, with_budget_line
    from harness.store.tracking import Tracker

    store = _store(tmp_path, config)
    tracker = Tracker(store)
    rows = leaderboard.collect_rows(tracker, profile="small")
    line = agreement.budget_line(
        config,
        "small",
        agreement.agreement(config, rows, leaderboard.collect_rows(tracker, profile="full"), profile="small"),
    )
    assert publish_board_metrics(tracker, rows, budget=line) == 4
    parent = next(iter(tracker.parent_runs("small").values()))
    note = tracker.get_run(parent).data.tags["mlflow.note.content"]
    assert note.startswith("Budget profile `small`") and "Spearman ρ" in note
    assert with_budget_line(note, "Budget profile `small`: new").startswith("Budget profile `small`: new\n\n")
    assert with_budget_line(note, "Budget profile `small`: new").count("Budget profile") == 1
