"""Step deltas: each recipe against its declared base, Welch CI and p, Holm within a report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from harness import steps
from harness.cli import main
from harness.config import load_config
from harness.stats import power_seeds
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


@pytest.mark.parametrize("name", ["b", "c", "d"])
def test_delta_interval_and_p_match_scipy(deltas, name):
    delta = deltas[name]
    values, base_values = VALUES[name], VALUES[delta.base]
    expected = stats.ttest_ind(values, base_values, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert delta.delta == pytest.approx(np.mean(values) - np.mean(base_values))
    assert (delta.delta_ci_low, delta.delta_ci_high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert delta.p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_holm_within_each_report_and_verdicts(deltas):
    raw = {name: deltas[name].p_value for name in ("b", "c", "d")}
    ordered = sorted(raw, key=raw.get)  # Holm by hand over report 004's three tests
    running, expected = 0.0, {}
    for position, name in enumerate(ordered):
        running = max(running, min(1.0, (3 - position) * raw[name]))
        expected[name] = running
    for name, p_holm in expected.items():
        assert deltas[name].p_holm == pytest.approx(p_holm, rel=1e-9)
    assert deltas["b"].verdict == "helped" and deltas["d"].verdict == "hurt"
    assert deltas["c"].verdict == "not resolved at n=4 vs 3" and deltas["c"].p_holm >= 0.05
    # Report 005 is its own family: one test (f), so its Holm p is its raw p.
    assert deltas["f"].p_holm == deltas["f"].p_value == 1.0
    assert deltas["f"].verdict == "not resolved at n=3 vs 2" and deltas["f"].delta == 0
    assert deltas["g"].verdict == "insufficient (n<2)" and deltas["g"].p_value is None
    assert deltas["g"].delta == pytest.approx(0.10)  # a point difference, no interval
    assert deltas["h"].verdict == "no runs" and deltas["h"].delta is None


def test_claimed_delta_beside_the_measured_one(deltas):
    assert deltas["b"].claimed_delta == pytest.approx(0.10) and deltas["c"].claimed_delta == pytest.approx(0.05)
    assert deltas["d"].claimed_delta is None  # d claims nothing
    assert (deltas["b"].claimed, deltas["b"].base_claimed) == (0.70, 0.60)


def test_seeds_needed_for_the_unresolved_steps(deltas):
    a, c = VALUES["a"], VALUES["c"]
    pooled = math.sqrt((2 * np.var(a, ddof=1) + 3 * np.var(c, ddof=1)) / 5)
    effect_size = abs(np.mean(c) - np.mean(a)) / pooled
    # Holm's strictest step in a family of three tests: α = 0.05 / 3.
    assert deltas["c"].seeds_needed == power_seeds(effect_size, alpha=0.05 / 3)
    assert deltas["c"].seeds_needed > power_seeds(effect_size) > 4
    assert deltas["b"].seeds_needed is None and deltas["b"].seeds_needed_note == "resolved"
    assert deltas["f"].seeds_needed_note == "Δ = 0" and deltas["g"].seeds_needed_note == "n<2"
    assert steps.table_cells(deltas["f"])[-1] == "Δ = 0" and steps.table_cells(deltas["b"])[-1] == "–"


def test_selection_keeps_bases_outside_it(config):
    rows = list(board(VALUES).values())
    [only_d] = steps.step_deltas(config, rows, {"d"})
    assert only_d.base == "c" and only_d.base_n == 4 and only_d.verdict == "hurt"
    assert only_d.p_holm == only_d.p_value  # a family of one


def test_formats(deltas):
    values = list(deltas.values())
    markdown = steps.to_markdown(values)
    assert "### report 004 (004_x.txt): 1 helped, 1 hurt, 1 not resolved" in markdown
    assert "### report 005 (005_y.txt): 1 not resolved, 1 insufficient (n<2), 1 no runs" in markdown
    b = deltas["b"]
    assert (
        f"| b | a | 3/3 | 71.00 | 61.00 | +10.00 [{100 * b.delta_ci_low:+.2f}, {100 * b.delta_ci_high:+.2f}] |"
        in markdown
    )
    assert "Holm-adjusted across the steps of this report" in markdown
    records = json.loads(steps.to_json(values))
    assert records[0]["recipe"] == "b" and records[0]["verdict"] == "helped"
    assert steps.to_csv(values).splitlines()[0].startswith("report,recipe,base,n,base_n,mean,base_mean,delta,")


def test_reports_nobody_trained_are_left_out(config):
    rows = list(board({"a": VALUES["a"], "b": VALUES["b"]}).values())
    names, idle = steps.reports_with_runs(config, rows, set(config.recipes))
    assert names == {"a", "b", "c", "d"}  # report 004 stays whole: c and d show as "no runs" there
    assert idle == ["report 005"]
    assert steps.reports_with_runs(config, [], {"a", "e"}) == (set(), ["report 004", "report 005"])


def test_long_step_names_wrap_after_hyphens():
    from harness.plots import _wrapped

    for name in ("step1", "proyecto-10", "tl-basic-imagenet-preprocess", "densenet121-finetune-imagenet-preprocess"):
        lines = _wrapped(name).split("\n")
        assert "".join(lines) == name
        assert all(len(line) <= 15 for line in lines), lines  # 14 and the hyphen that ends a line
    assert _wrapped("proyecto-10") == "proyecto-10"


def test_plot_has_one_panel_per_report(config, deltas, tmp_path):
    from harness.publish import write_steps_files

    rows = list(board(VALUES).values())
    files = write_steps_files(config, rows, list(deltas.values()), tmp_path / "out", profile="smoke")
    assert [f.name for f in files] == ["steps.md", "steps.csv", "steps.json", "steps.png"]
    png = (tmp_path / "out" / "steps.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(tmp_path / "out" / "steps.png").shape
    assert height > width * 0.6  # two panels stacked, one per report


def test_bench_steps_reads_the_store(tmp_path, config):
    from harness.tracking import Tracker

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
