"""Adaptive seeds: which recipes get more seeds and why (a pure function of rows), and the rounds
run end to end against a real store with a stand-in sweep that logs runs instead of training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config import load_config
from harness.identity import identify
from harness.store.tracking import Tracker
from harness.sweep.adaptive import plan_round, run_adaptive, seeds_tried
from harness.sweep.executors import Outcome, SweepReport
from harness.sweep.plan import RunSpec, SweepSettings
from tests.standins import board, log_run
from tests.test_stats import power_seeds
from tests.test_steps import CHAINS_CONFIG


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "benchmarks.toml"
    path.write_text(CHAINS_CONFIG)
    return load_config(path)


def plan(config, values, names=None, **options):
    rows = list(board(values).values())
    options.setdefault("max_seeds", 10)
    return plan_round(config, rows, set(names or values), number=2, **options)


def test_resolved_questions_get_no_seeds(config):
    decided = plan(config, {"a": [0.60, 0.61, 0.62], "b": [0.70, 0.71, 0.72]})
    assert decided.requests == () and decided.left_open == ()
    assert "every question resolved or out of seeds; done" in decided.describe()


def test_an_unresolved_step_asks_for_its_seeds_needed_on_both_sides(config):
    values = {"a": [0.60, 0.61, 0.62], "b": [0.605, 0.615, 0.625]}  # Δ = 0.5 sd: 64 seeds needed
    assert power_seeds(0.5) == 64
    decided = plan(config, values, max_seeds=100, tried={"a": 40, "b": 40})
    assert [(r.recipe, r.seeds, r.finished) for r in decided.requests] == [("a", 64, 3), ("b", 64, 3)]
    [a_reasons, b_reasons] = [r.reasons for r in decided.requests]
    assert a_reasons == (
        "Δ b vs previous a: not resolved at n=3, seeds needed 64",
        "a vs leader b: not resolved at n=3, seeds needed 64",
    )
    assert b_reasons == a_reasons
    # From 3 seeds it at most doubles; never beyond --max-seeds.
    assert [r.seeds for r in plan(config, values).requests] == [6, 6]
    assert [r.seeds for r in plan(config, values, max_seeds=5).requests] == [5, 5]
    text = plan(config, values).describe()
    assert "Adaptive seeds, round 2: 2 recipe(s) get more seeds" in text and "a: 3 → 6 seeds" in text


def test_a_difference_too_small_to_power_doubles(config):
    values = {"a": [0.60, 0.62, 0.61], "b": [0.6001, 0.6201, 0.6101]}  # d = 0.01: over 1,000 seeds
    decided = plan(config, values, max_seeds=100, tried={"a": 40, "b": 40})
    assert [r.seeds for r in decided.requests] == [80, 80]
    assert decided.requests[0].reasons[0] == "Δ b vs previous a: not resolved at n=3"  # no count to show


def test_at_max_seeds_a_question_is_left_open(config):
    rng = np.random.default_rng(0)
    values = {"a": list(0.60 + 0.01 * rng.standard_normal(10)), "b": list(0.601 + 0.01 * rng.standard_normal(10))}
    decided = plan(config, values, max_seeds=10)
    assert decided.requests == ()
    assert any(note.endswith("(at --max-seeds 10)") for note in decided.left_open)
    assert "left open:" in decided.describe()


def test_identical_seed_by_seed_is_left_open(config):
    decided = plan(config, {"a": [0.60, 0.61, 0.62], "b": [0.60, 0.61, 0.62]})
    assert decided.requests == ()
    assert all("identical seed by seed" in note for note in decided.left_open) and len(decided.left_open) == 2


def test_failed_seeds_count_as_tried(config):
    values = {"a": [0.60, float("nan"), 0.62, 0.61], "b": [0.605, 0.615, 0.625]}
    rows = board(values)
    assert rows["a"].n == 3 and rows["a"].failed == 1 and seeds_tried(rows["a"]) == 4
    decided = plan(config, values)
    assert {r.recipe: r.seeds for r in decided.requests} == {"a": 8, "b": 6}


def test_a_step_whose_base_is_not_selected_is_not_a_question(config):
    values = {"a": [0.60, 0.61, 0.62], "b": [0.605, 0.615, 0.625]}
    assert plan(config, values, names={"b"}).requests == ()  # and b alone leads its own board


def test_a_row_with_one_finished_seed_asks_for_more(config):
    values = {"a": [0.60, 0.61, 0.62], "c": [0.59]}
    decided = plan(config, values, tried={"c": 3})  # two of c's three seeds failed
    assert {r.recipe: r.seeds for r in decided.requests} == {"a": 6, "c": 6}
    assert "Δ c vs previous a: insufficient (n<2)" in decided.requests[1].reasons


# The rounds end to end: a stand-in sweep logs each new (recipe, seed) run with a value drawn
# from that recipe's distribution, skipping finished identities as run_sweep does.

TRUE_MEANS = {"a": 0.60, "b": 0.70, "c": 0.604, "d": 0.65}


def stand_in_sweep(calls):
    def sweep(config, tracker, recipes, settings, progress=None):
        finished = tracker.finished_identities()
        report = SweepReport()
        for recipe in recipes:
            for seed in range(settings.seeds):
                identity = identify(config, recipe, settings.profile, seed, "synthetic-data")
                spec = RunSpec(recipe=recipe, identity=identity)
                if identity.identity in finished:
                    report.outcomes.append(Outcome(spec=spec, status="SKIPPED"))
                    continue
                noise = np.random.default_rng([seed, ord(recipe.name)]).standard_normal()
                value = TRUE_MEANS[recipe.name] + 0.01 * noise
                log_run(tracker, config, recipe.name, seed, value, profile=settings.profile)
                report.outcomes.append(Outcome(spec=spec, status="FINISHED", test_accuracy=value))
        calls.append((sorted(r.name for r in recipes), settings.seeds))
        return report

    return sweep


def test_rounds_add_seeds_only_where_an_answer_is_open_and_resume(tmp_path, config):
    tracker = Tracker(f"sqlite:///{tmp_path / 'm.db'}")
    recipes = config.select(suite="first")
    settings = SweepSettings(profile="smoke", seeds=3)
    calls = []
    report = run_adaptive(config, tracker, recipes, settings, max_seeds=6, sweep=stand_in_sweep(calls))

    assert calls[0] == (["a", "b", "c", "d"], 3)
    trained = {}
    for outcome in report.sweep.by_status("FINISHED"):
        trained[outcome.spec.recipe.name] = trained.get(outcome.spec.recipe.name, 0) + 1
    # b helps (+10 pp), d beats c (+4.6 pp) and trails b (-5 pp): resolved at 3 seeds. c vs a (0.4 pp)
    # is not: both go to 6.
    assert trained == {"a": 6, "b": 3, "c": 6, "d": 3}
    assert all(seeds <= 6 for _, seeds in calls) and all("b" not in names for names, _ in calls[1:])
    assert report.rounds[0].number == 1 and report.rounds[-1].requests == ()
    assert any("Δ c vs previous a" in note for note in report.rounds[-1].left_open)

    [board_run] = tracker.search("tags.`bench.kind` = 'leaderboard'")
    local = tracker.download_artifact(board_run.info.run_id, "adaptive_plan.json", tmp_path / "plan")
    logged = json.loads(local.read_text())
    assert logged["max_seeds"] == 6 and logged["start_seeds"] == 3 and len(logged["rounds"]) == len(report.rounds)
    assert logged["rounds"][1]["requests"][0]["recipe"] == "a"

    again = []
    resumed = run_adaptive(config, tracker, recipes, settings, max_seeds=6, sweep=stand_in_sweep(again))
    assert resumed.sweep.by_status("FINISHED") == [] and len(resumed.rounds) == 2  # nothing left to train


def test_no_round_starts_once_the_time_budget_has_run_out(tmp_path, config):
    """The first round ends at the time budget (its report says so): no second round starts, and
    the report keeps what the budget left."""
    calls = []
    first_round = stand_in_sweep(calls)

    def out_of_time(config, tracker, recipes, settings, progress=None):
        report = first_round(config, tracker, recipes, settings, progress)
        report.budget_spent = True
        report.seconds_left = {"left-over run": 60.0}
        return report

    tracker = Tracker(f"sqlite:///{tmp_path / 'm.db'}")
    settings = SweepSettings(profile="smoke", seeds=3)
    report = run_adaptive(config, tracker, config.select(suite="first"), settings, max_seeds=6, sweep=out_of_time)
    assert len(calls) == 1 and len(report.rounds) == 1
    assert report.sweep.budget_spent and report.sweep.seconds_left == {"left-over run": 60.0}


def test_bench_all_seeds_auto(tmp_path, config, monkeypatch):
    import harness.sweep.sweep

    calls = []
    monkeypatch.setattr(harness.sweep.sweep, "run_sweep", stand_in_sweep(calls))
    store = f"sqlite:///{tmp_path / 'm.db'}"
    base = ["--config", str(config.path), "--tracking-uri", store]
    result = CliRunner().invoke(
        main, [*base, "all", "--suite", "first", "--profile", "smoke", "--seeds", "auto", "--max-seeds", "6"]
    )
    assert result.exit_code == 0, result.output
    assert "Adaptive seeds, round 1: 4 recipe(s), 3 seeds each" in result.output
    assert "Adaptive seeds, round 2: 2 recipe(s) get more seeds" in result.output and "a: 3 → 6 seeds" in result.output
    assert "18 trained, " in result.output and "adaptive round(s)" in result.output
    assert "Steps of report 004, profile 'smoke'" in result.output  # the step table follows the leaderboard

    for arguments, message in (
        (["--seeds", "3", "--max-seeds", "6"], "--max-seeds 6 needs --seeds auto"),
        (["--seeds", "many"], "'many' is neither a number of seeds nor 'auto'"),
        (["--seeds", "auto", "--max-seeds", "2"], "2 is not in the range 3<=x<=1000"),
    ):
        bad = CliRunner().invoke(main, [*base, "all", "--profile", "smoke", *arguments])
        assert bad.exit_code == 2 and message in bad.output, bad.output


@pytest.mark.slow
def test_seeds_auto_trains_for_real_and_resumes(tmp_path, synthetic_npz, test_config, monkeypatch, smoke_sweep):
    """Real worker processes on the 200-image smoke profile, on a store that holds 2 seeds of each
    recipe already (the session's shared smoke sweep, copied here): 3 seeds each, at most 4, the
    finished seeds counted, and a rerun trains nothing."""
    assert smoke_sweep.exit_code == 0, smoke_sweep.output
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    command = ["--config", str(test_config), "--data", str(synthetic_npz), "all", "--profile", "smoke"]
    command += ["--seeds", "auto", "--max-seeds", "4"]
    result = runner.invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "Adaptive seeds, round 1: 2 recipe(s), 3 seeds each" in result.output
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    children = tracker.search("tags.`bench.kind` = 'child'")
    per_recipe = {name: sum(c.data.tags["bench.recipe"] == name for c in children) for name in ("tiny-a", "tiny-b")}
    assert set(per_recipe.values()) <= {3, 4} and all(c.info.status == "FINISHED" for c in children)
    assert f"{len(children) - 4} trained, 4 already finished" in result.output, result.output
    [board_run] = tracker.search("tags.`bench.kind` = 'leaderboard'")
    plan_file = tracker.download_artifact(board_run.info.run_id, "adaptive_plan.json", tmp_path / "plan")
    assert json.loads(plan_file.read_text())["rounds"][0]["requests"][0]["seeds"] == 3

    again = runner.invoke(main, command)
    assert again.exit_code == 0 and "0 trained, " in again.output
