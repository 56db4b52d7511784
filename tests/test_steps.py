"""Step deltas: each step against the step it was built from, Welch's p Holm-adjusted in one family
with the leaderboard's comparisons, the interval at the level Holm tested it at."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from harness.cli import main
from harness.config import load_config
from harness.results import steps
from harness.results.stats import _welch_power, holm, holm_levels, smallest_n
from tests.conftest import REAL_CONFIG
from tests.standins import board, log_runs

CHAINS_CONFIG = """
[data]
validation_size = 100
split_seed = 7

[profiles.smoke]
description = "test budget"
max_epochs = 1
train_size = 200
validation_size = 50
test_size = 100

[suites]
first = ["a", "b", "c", "d"]

[[recipe]]
name = "a"
architecture = "r004_step1"
summary = "start"
source = { report = "004_x.txt", section = "1)" }
reported = { test_accuracy = 0.60 }
training = { optimizer = "adam", learning_rate = 0.001, loss = "sparse_categorical_crossentropy", batch_size = 64, epochs = 30 }

[[recipe]]
name = "b"
base = "a"
summary = "helps"
source = { report = "004_x.txt", section = "2)" }
reported = { test_accuracy = 0.70 }
training = { batch_size = 32 }

[[recipe]]
name = "c"
base = "a"
summary = "unclear, and goes back to a"
source = { report = "004_x.txt", section = "3)" }
reported = { test_accuracy = 0.65 }
training = { batch_size = 16 }

[[recipe]]
name = "d"
base = "c"
summary = "hurts"
source = { report = "004_x.txt", section = "4)" }
training = { batch_size = 8 }

[[recipe]]
name = "e"
architecture = "r004_step1"
summary = "second report's start"
source = { report = "005_y.txt", section = "1)" }
training = { optimizer = "adam", learning_rate = 0.001, loss = "sparse_categorical_crossentropy", batch_size = 64, epochs = 30 }

[[recipe]]
name = "f"
base = "e"
summary = "identical"
source = { report = "005_y.txt", section = "2)" }
training = { epochs = 31 }

[[recipe]]
name = "g"
base = "e"
summary = "one seed"
source = { report = "005_y.txt", section = "3)" }
training = { epochs = 32 }

[[recipe]]
name = "h"
base = "e"
summary = "never run"
source = { report = "005_y.txt", section = "4)" }
training = { epochs = 33 }
"""

VALUES = {
    "a": [0.60, 0.61, 0.62],
    "b": [0.70, 0.71, 0.72],
    "c": [0.59, 0.62, 0.60, 0.61],  # unequal n, not resolved from a
    "d": [0.50, 0.51, 0.49, 0.50, 0.52],  # against c, its declared base, not b above it
    "e": [0.30, 0.30],
    "f": [0.30, 0.30, float("nan"), 0.30],  # identical to e; the NaN seed is a failed seed
    "g": [0.40],
}


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "benchmarks.toml"
    path.write_text(CHAINS_CONFIG)
    return load_config(path)


@pytest.fixture
def deltas(config):
    return {d.recipe: d for d in steps.step_deltas(config, list(board(VALUES).values()))}


def test_every_step_against_its_declared_base(deltas):
    assert list(deltas) == ["b", "c", "d", "f", "g", "h"]
    assert {name: d.base for name, d in deltas.items()} == {"b": "a", "c": "a", "d": "c", "f": "e", "g": "e", "h": "e"}
    assert deltas["d"].n == 5 and deltas["d"].base_n == 4 and deltas["f"].n == 3


# The family: every row against the leader (b: the best with n >= 2) and every step against the
# step it was built from, a pair once. g has one seed, h none: no test.
FAMILY = [("a", "b"), ("c", "b"), ("d", "b"), ("e", "b"), ("f", "b"), ("c", "a"), ("d", "c"), ("f", "e")]


def _family_by_hand():
    finite = {name: [v for v in values if math.isfinite(v)] for name, values in VALUES.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision warning on a constant side
        raw = [stats.ttest_ind(finite[x], finite[y], equal_var=False).pvalue for x, y in FAMILY]
    raw[FAMILY.index(("f", "e"))] = 1.0  # identical values on both sides: p = 1, not scipy's NaN
    return dict(zip(FAMILY, holm(raw), strict=True)), dict(zip(FAMILY, holm_levels(raw), strict=True))


@pytest.mark.parametrize("name", ["b", "c", "d"])
def test_delta_interval_and_p_match_scipy(deltas, name):
    delta = deltas[name]
    values, base_values = VALUES[name], VALUES[delta.base]
    expected = stats.ttest_ind(values, base_values, equal_var=False)
    _, levels = _family_by_hand()
    level = levels.get((name, delta.base), levels.get((delta.base, name)))
    assert delta.delta_ci_confidence == pytest.approx(1 - level)
    interval = expected.confidence_interval(1 - level)  # the interval at the level Holm tested it at
    assert delta.delta == pytest.approx(np.mean(values) - np.mean(base_values))
    assert (delta.delta_ci_low, delta.delta_ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert delta.p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_one_holm_family_with_the_leader_comparisons_and_verdicts(deltas):
    adjusted, _ = _family_by_hand()
    for (x, y), p_holm in adjusted.items():
        if (x, y) in (("c", "a"), ("d", "c"), ("f", "e")):
            assert deltas[x].p_holm == pytest.approx(p_holm, rel=1e-9), (x, y)
    assert deltas["b"].p_holm == pytest.approx(adjusted[("a", "b")], rel=1e-9)  # b vs a is a vs the leader b
    assert {d.family for d in deltas.values()} == {len(FAMILY)}
    assert deltas["b"].verdict == "helped" and deltas["d"].verdict == "hurt"
    assert deltas["c"].verdict == "not resolved at n=4 vs 3" and deltas["c"].p_holm >= 0.05
    assert deltas["f"].p_holm == deltas["f"].p_value == 1.0
    assert deltas["f"].verdict == "not resolved at n=3 vs 2" and deltas["f"].delta == 0
    assert deltas["g"].verdict == "insufficient (n<2)" and deltas["g"].p_value is None
    assert deltas["g"].delta == pytest.approx(0.10)  # a point difference, no interval
    assert deltas["h"].verdict == "no runs" and deltas["h"].delta is None


def test_a_pair_in_both_tables_has_one_p_and_one_verdict(config):
    """b is the leader and a step of a: the leaderboard's row a and the step table's step b are
    the same pair, with the same Holm p, the same interval (mirrored) and the same verdict, even
    where the step alone would be resolved and the board alone would not (the README showed
    r000-proyecto-2 vs -1 as "hurt" in one table and "≈" in the other)."""
    values = {"a": [0.600, 0.640, 0.620], "b": [0.660, 0.672, 0.668], "c": [0.600, 0.660, 0.630, 0.640]}
    rows = list(board(values).values())
    [b_step, _, _] = steps.step_deltas(config, rows, {"b", "c", "d"})
    row_a = next(r for r in rows if r.recipe == "a")
    assert row_a.leader == "b" and b_step.base == "a"
    assert b_step.p_holm == row_a.p_vs_leader_holm
    assert (b_step.delta_ci_low, b_step.delta_ci_high) == pytest.approx((-row_a.delta_ci_high, -row_a.delta_ci_low))
    assert (b_step.verdict in ("helped", "hurt")) == (row_a.leader_verdict == "resolved")


def test_the_interval_beside_a_verdict_is_the_one_that_decides_it():
    """Over many random boards: a step's interval excludes 0 exactly where its verdict is helped
    or hurt, and a row's exactly where it is resolved from the leader (the raw 95% interval
    beside a Holm verdict used to exclude 0 on rows marked not resolved)."""
    config = load_config(REAL_CONFIG)
    names = [r.name for r in config.select(suite="report-004")]
    rng = np.random.default_rng(8)
    for _ in range(40):
        centres = rng.uniform(0.6, 0.7, len(names))
        values = {n: list(rng.normal(c, 0.01, 3)) for n, c in zip(names, centres, strict=True)}
        rows = list(board(values).values())
        for delta in steps.step_deltas(config, rows, set(names)):
            excludes = delta.delta_ci_low > 0 or delta.delta_ci_high < 0
            assert excludes == delta.resolved, delta
        for row in rows:
            if row.delta_ci_low is not None:
                assert (row.delta_ci_low > 0 or row.delta_ci_high < 0) == (row.leader_verdict == "resolved")


def test_claimed_delta_beside_the_measured_one(deltas, config):
    assert deltas["b"].claimed_delta == pytest.approx(0.10) and deltas["c"].claimed_delta == pytest.approx(0.05)
    assert deltas["d"].claimed_delta is None  # d claims nothing
    assert (deltas["b"].claimed, deltas["b"].base_claimed) == (0.70, 0.60)
    at_budget = {d.recipe: d for d in steps.step_deltas(config, list(board(VALUES).values()), claims=False)}
    assert at_budget["b"].claimed_delta is None  # a budget profile checks no claim
    assert "claimed Δ pp" not in steps.to_markdown(list(at_budget.values()), budget="Budget profile `smoke`: …")


def test_seeds_needed_for_the_unresolved_steps(deltas):
    a, c = VALUES["a"], VALUES["c"]
    delta, var_a, var_c = abs(np.mean(c) - np.mean(a)), np.var(a, ddof=1), np.var(c, ddof=1)
    # By Welch's test (the verdict's), at Holm's strictest step in a family of eight tests: α = 0.05 / 8.
    expected = smallest_n(lambda n: _welch_power(delta, var_c, var_a, n, 0.05 / len(FAMILY)) >= 0.8)
    assert deltas["c"].seeds_needed == expected
    assert deltas["c"].seeds_needed > smallest_n(lambda n: _welch_power(delta, var_c, var_a, n, 0.05) >= 0.8) > 4
    assert deltas["b"].seeds_needed is None and deltas["b"].seeds_needed_note == "resolved"
    assert deltas["f"].seeds_needed_note == "Δ = 0" and deltas["g"].seeds_needed_note == "n<2"
    assert steps.table_cells(deltas["f"])[-1] == "Δ = 0" and steps.table_cells(deltas["b"])[-1] == "–"


def test_selection_keeps_bases_outside_it(config):
    rows = list(board(VALUES).values())
    [only_d] = steps.step_deltas(config, rows, {"d"})
    assert only_d.base == "c" and only_d.base_n == 4 and only_d.verdict == "hurt"


def test_formats(deltas):
    values = list(deltas.values())
    markdown = steps.to_markdown(values)
    assert "### report 004 (004_x.txt): 1 helped, 1 hurt, 1 not resolved" in markdown
    assert "### report 005 (005_y.txt): 1 not resolved, 1 insufficient (n<2), 1 no runs" in markdown
    assert "| step | vs previous | n step/vs | step % | vs % | Δ pp [Holm CI] | Holm p | claimed Δ pp |" in markdown
    b = deltas["b"]
    assert (
        f"| b | a | 3/3 | 71.00 | 61.00 | +10.00 [{100 * b.delta_ci_low:+.2f}, {100 * b.delta_ci_high:+.2f}] |"
        in markdown
    )
    assert "Holm-adjusted across one family" in markdown and "the step it was built from" in markdown
    records = json.loads(steps.to_json(values))
    assert records[0]["recipe"] == "b" and records[0]["verdict"] == "helped"
    assert steps.to_csv(values).splitlines()[0].startswith("report,recipe,base,n,base_n,mean,base_mean,delta,")


def test_previous_is_the_step_a_report_built_from():
    """Report 004's steps 3-7 inherit their training from step 1 (base) but each was built from
    the step before it (the report's narrative): step 3 is compared with step 2, not step 1."""
    config = load_config(REAL_CONFIG)
    step3 = config.recipe("r004-step3")
    assert step3.base == "r004-step1" and step3.previous == "r004-step2"
    values = {f"r004-step{i}": [0.60 + i / 100, 0.61 + i / 100, 0.62 + i / 100] for i in range(1, 4)}
    compared = {d.recipe: d.base for d in steps.step_deltas(config, list(board(values).values()), set(values))}
    assert compared == {"r004-step2": "r004-step1", "r004-step3": "r004-step2"}
    cumulative = steps.step_deltas(config, list(board(values).values()), set(values), against="first")
    assert {d.recipe: d.base for d in cumulative} == {"r004-step2": "r004-step1", "r004-step3": "r004-step1"}
    assert "vs first" in steps.to_markdown(cumulative) and "first step of its chain" in steps.to_markdown(cumulative)
    # every step of the five reports is built from an earlier step of its own report
    order = list(config.recipes)
    for recipe in config.recipes.values():
        if recipe.previous is not None:
            previous = config.recipe(recipe.previous)
            assert previous.source.report == recipe.source.report
            assert order.index(previous.name) < order.index(recipe.name)
    assert steps.first_step(config, config.recipe("r004-step10")).name == "r004-step1"
    assert config.recipe("r004-step10").previous == "r004-step9"


def test_what_changed_says_how_a_step_differs_from_the_step_it_was_built_from():
    """A parent's what_changed param compares with ``previous``, not ``base``: step 3 adds
    BatchNorm to step 2 (base step 1 would also list step 2's changes)."""
    from harness.store.recipe_params import built_from, what_changed

    config = load_config(REAL_CONFIG)
    step3 = config.recipe("r004-step3")
    assert built_from(step3) == "r004-step2"
    assert what_changed(config, step3) == f"{step3.summary} vs r004-step2: architecture r004_step2 → r004_step3"


def test_reports_nobody_trained_are_left_out(config):
    rows = list(board({"a": VALUES["a"], "b": VALUES["b"]}).values())
    names, idle = steps.reports_with_runs(config, rows, set(config.recipes))
    assert names == {"a", "b", "c", "d"}  # report 004 stays whole: c and d show as "no runs" there
    assert idle == ["report 005"]
    assert steps.reports_with_runs(config, [], {"a", "e"}) == (set(), ["report 004", "report 005"])


def test_long_step_names_wrap_after_hyphens():
    from harness.results.plots import _wrapped

    for name in ("step1", "proyecto-10", "tl-basic-imagenet-preprocess", "densenet121-finetune-imagenet-preprocess"):
        lines = _wrapped(name).split("\n")
        assert "".join(lines) == name
        assert all(len(line) <= 15 for line in lines), lines  # 14 and the hyphen that ends a line
    assert _wrapped("proyecto-10") == "proyecto-10"


def test_plot_has_one_panel_per_report(config, deltas, tmp_path):
    from harness.results.publish import write_steps_files

    rows = list(board(VALUES).values())
    files = write_steps_files(config, rows, list(deltas.values()), tmp_path / "out", profile="smoke")
    assert [f.name for f in files] == ["steps.md", "steps.csv", "steps.json", "steps.png"]
    png = (tmp_path / "out" / "steps.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(tmp_path / "out" / "steps.png").shape
    assert height > width * 0.6  # two panels stacked, one per report


def test_bench_steps_reads_the_store(tmp_path, config):
    from harness.store.tracking import Tracker

    store = f"sqlite:///{tmp_path / 'm.db'}"
    log_runs(Tracker(store), config, {name: VALUES[name] for name in ("a", "b", "c", "d")})
    runner = CliRunner()
    base = ["--config", str(config.path), "--tracking-uri", store, "steps", "--profile", "smoke"]
    result = runner.invoke(main, [*base, "--suite", "first", "--format", "json"])
    assert result.exit_code == 0, result.output
    records = {r["recipe"]: r for r in json.loads(result.stdout)}
    assert {name: r["verdict"] for name, r in records.items()} == {
        "b": "helped",
        "c": "not resolved at n=4 vs 3",
        "d": "hurt",
    }
    table = runner.invoke(main, [*base, "--suite", "first"])
    assert table.exit_code == 0 and "Steps of report 004, profile 'smoke': 1 helped, 1 hurt, 1 not resolved" in (
        table.output
    )
    plotted = runner.invoke(main, [*base, "--plots", str(tmp_path / "plots"), "--format", "csv"])
    assert plotted.exit_code == 0, plotted.output
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"steps.md", "steps.csv", "steps.json", "steps.png"}
    # Report 005 has no run at this profile: one line, not a table or a panel of "no runs".
    assert "no finished runs at profile 'smoke' of report 005: left out" in plotted.stderr
    assert {line.split(",")[1] for line in plotted.stdout.splitlines()[1:]} == {"b", "c", "d"}  # report, recipe, …
    empty = runner.invoke(main, [*base[:-2], "--profile", "smoke", "--suite", "nope"])
    assert empty.exit_code != 0 and "unknown suite 'nope'" in empty.output
    other = runner.invoke(main, ["--config", str(config.path), "--tracking-uri", store, "steps", "--profile", "smok"])
    assert other.exit_code != 0 and "unknown profile 'smok'" in other.output
    nothing = runner.invoke(
        main,
        ["--config", str(config.path), "--tracking-uri", f"sqlite:///{tmp_path}/e.db", "steps", "--profile", "smoke"],
    )
    assert nothing.exit_code == 1 and "no MLflow store at" in nothing.output  # reading never creates one
    assert not (tmp_path / "e.db").exists()
