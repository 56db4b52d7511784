"""The MLflow UI as a person sees it, in a real headless Chromium: `bench ui` on a tiny sweep's store.

Opens the run list, a parent run, a child run (overview, metric charts, artifacts) and the compare
view of two parents, and asserts what a user must see there. Screenshots go to pytest's tmp_path
(printed on failure), never into the repository. Needs /usr/bin/chromium and playwright; skipped
with the reason where either is missing.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from tests.test_ui import BenchUI

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000  # a page on a busy 2-core machine


@pytest.fixture
def browser():
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def tiny_store(tmp_path, synthetic_npz, test_config, monkeypatch, smoke_sweep) -> str:
    """2 recipes × 2 seeds, smoke profile, synthetic data (a copy of the session's SMOKE_SWEEP),
    plus the leaderboard run."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["--config", str(test_config), "--data", str(synthetic_npz)]
    assert smoke_sweep.exit_code == 0, smoke_sweep.output
    board = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--plots", str(tmp_path / "board")])
    assert board.exit_code == 0, board.output
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def run_ids(store: str) -> dict[str, str]:
    """Run name → id."""
    from harness.store.tracking import Tracker

    tracker = Tracker(store)
    return {run.info.run_name: run.info.run_id for run in tracker.search("")}


def close_assistant(page) -> None:
    """MLflow 3 opens its assistant panel on a fresh browser's first visit; a user closes it."""
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():
        close.first.click()


CLAIM = re.compile(r"bench\.claim(?![.\w])")  # the claim tag itself; bench.claim.ticket (a queue place) is not a claim

BOARD = [
    "board/1_mean", "board/2_std", "board/3_n", "board/4_ci_lower", "board/4_ci_upper", "board/5_pi_lower",
    "board/5_pi_upper", "board/6_delta_vs_leader", "board/7_p_vs_leader_holm", "board/8_claimed", "board/9_claim_in_pi",
]  # fmt: skip


def metric_values(body: str, names: list[str]) -> dict[str, str]:
    """The value shown after each name in a run page's metrics table (one line each)."""
    lines = body.splitlines()
    return {name: lines[lines.index(name) + 1] for name in names if name in lines}


@pytest.mark.slow
def test_compare_recipes_and_seeds_in_the_mlflow_ui(tiny_store, browser, tmp_path):
    ids = run_ids(tiny_store)
    ui = BenchUI(tiny_store, tmp_path / "ui.log")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        link = ui.wait_until_ready()
        assert link.endswith("/runs?workflowType=machine_learning"), link  # the model-training run table
        assert "until 'Model training' is chosen once at the top left" in ui.log.read_text()  # what a link cannot do
        page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()  # a fresh browser
        page.set_default_timeout(TIMEOUT_MS)
        mode = "workflowType=machine_learning"
        experiment = link.split("/#/experiments/")[1].split("/")[0]

        def show(path: str, wait_for: str, shot: str) -> str:
            page.goto(f"{ui.url}/#/experiments/{experiment}/{path}?{mode}")
            page.get_by_text(wait_for, exact=True).first.wait_for()
            close_assistant(page)
            page.wait_for_timeout(1500)  # charts and images finish drawing
            page.screenshot(path=str(shots / shot), full_page=True)
            return page.inner_text("body")

        # Run list: the link bench ui prints opens it in Model training mode, with the Dataset column filled.
        page.goto(link)
        page.get_by_text("tiny-a [smoke]", exact=True).wait_for()
        close_assistant(page)
        body = page.inner_text("body")
        assert "Model training" in body and "Traces" in body
        assert "Overview\nObservability" not in body  # not the GenAI side bar
        assert "tiny-b [smoke]" in body and "leaderboard [smoke]" in body
        assert "cifar10-train (" in body  # the Dataset column
        assert "bench all --profile smoke --seeds 2" in body  # the Source column
        # Nested children, the seed first in their names.
        for expander in page.locator('[data-component-id$="runnamecellrenderer.tsx_46"]').all():
            expander.click()
        page.get_by_text("seed 0 · tiny-a", exact=True).wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "run_list.png"), full_page=True)
        names = page.locator('a:has-text("seed ")').all_inner_texts()
        assert {"seed 0 · tiny-a", "seed 1 · tiny-a", "seed 0 · tiny-b", "seed 1 · tiny-b"} <= set(names)

        # A parent: the recipe's params, what changed, and its 11 figures in reading order, as fractions.
        body = show(f"runs/{ids['tiny-b [smoke]']}", "board/1_mean", "parent.png")
        lines = body.splitlines()
        # In this order on the run page, which hides NaN: tiny-b's report claims nothing (8_claimed, 9_claim_in_pi),
        # and as the leader (which the seeds decide) it has no Δ or p against itself.
        shown = [line for line in lines if line.startswith("board/")]
        assert shown == [name for name in BOARD[:9] if name in shown] and BOARD[:7] == shown[:7], shown
        values = metric_values(body, BOARD)
        assert 0 <= float(values["board/1_mean"]) <= 1 and values["board/3_n"] == "2"
        assert all(0 <= float(values[n]) <= 1 for n in BOARD[3:7])  # interval bounds cut at 0 and 1
        assert "_pct" not in body and "test_accuracy_mean" not in body  # one unit, one name per figure
        assert "training.batch_size" in body and "reported.test_accuracy" in body and "model.params" in body
        assert (
            "what_changed" in body
            and "augmented, one-hot loss, early stopping vs tiny-a: augmentation none → flips" in body
        )
        assert 'section "10)"' in body and "§" not in body and "as fractions (0.7151 = 71.51 %)" in body
        assert "seed 0 · tiny-b" in body and "seed 1 · tiny-b" in body  # Child runs
        assert not CLAIM.search(body) and "bench.heartbeat" not in body  # its queue ticket stays: it orders parents
        charts = show(f"runs/{ids['tiny-b [smoke]']}/model-metrics", "1_mean", "parent_charts.png")
        # One section of charts, one per figure with a value (MLflow hides NaN-only charts: which are NaN
        # depends on who leads), and none of the old duplicates.
        shown = re.search(r"^board\s*\((\d+)\)$", charts, re.MULTILINE)  # one line or two, by the layout
        assert shown and 7 <= int(shown.group(1)) <= 11, charts[:3000]
        assert "1_mean" in charts and "test_accuracy_mean" not in charts

        # A child: its description, dataset and settings as params; charts with accuracy first; artifacts.
        child = ids["seed 1 · tiny-a"]
        body = show(f"runs/{child}", "accuracy/test", "child.png")
        assert "Seed 1 of tiny-a" in body and "cifar10-train (" in body and "Parent run" in body
        assert "evaluation.batch_size" in body and "jit_compile.resolved" in body
        assert 0 <= float(metric_values(body, ["accuracy/test"])["accuracy/test"]) <= 1  # a fraction, as on parents
        assert not CLAIM.search(body) and "bench.heartbeat" not in body  # released when the run ended
        body = show(f"runs/{child}/model-metrics", "accuracy", "child_charts.png")
        sections = [line for line in body.splitlines() if line in ("accuracy", "loss", "overhead", "time", "training")]
        assert sections[:2] == ["accuracy", "loss"], sections
        show(f"runs/{child}/artifacts/confusion_matrix.png", "confusion_matrix.png", "child_artifacts.png")
        image = page.locator('img[alt="confusion_matrix.png"]').first
        image.wait_for()
        assert image.evaluate("img => img.complete && img.naturalWidth") > 300  # the image itself, drawn

        # The leaderboard run: its table, sortable, in fractions too.
        body = show(f"runs/{ids['leaderboard [smoke]']}/artifacts/leaderboard_table.json", "mean", "board.png")
        assert "View as table" in body and "tiny-a" in body and "tiny-b" in body and "mean_pct" not in body

        # Compare two parents: what changed, in words, and their figures in reading order.
        runs = json.dumps([ids["tiny-a [smoke]"], ids["tiny-b [smoke]"]])
        page.goto(f"{ui.url}/#/compare-runs?runs={runs}&experiments={json.dumps([experiment])}&{mode}")
        page.get_by_text("Comparing 2 Runs", exact=False).first.wait_for()
        close_assistant(page)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "compare.png"), full_page=True)
        body = page.inner_text("body")
        assert "Metrics:\nboard/1_mean" in body  # the parallel-coordinates plot's default metric
        assert "augmentation\tnone\tflips" in body and "training.loss\tsparse_categorical_crossentropy" in body
        assert "what_changed\tbaseline\taugmented, one-hot loss, early stopping vs tiny-a: " in body
        table = body.split("Show diff only")[2].splitlines()
        assert [line for line in table if line.startswith("board/")] == BOARD

        # The seeds of both recipes side by side: Compare → Box Plot, x = recipe, y = accuracy/test.
        seeds = json.dumps([ids[f"seed {seed} · {recipe}"] for recipe in ("tiny-a", "tiny-b") for seed in (0, 1)])
        page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{ui.url}/#/compare-runs?runs={seeds}&experiments={json.dumps([experiment])}&{mode}")
        page.get_by_text("Comparing 4 Runs", exact=False).first.wait_for()
        close_assistant(page)
        page.get_by_text("Box Plot", exact=True).first.click()
        for axis in ("recipe", "accuracy/test"):
            page.get_by_text("Select parameter or metric").first.click()
            page.keyboard.type(axis)
            page.keyboard.press("Enter")
            page.wait_for_timeout(500)
        page.locator(".js-plotly-plot .boxlayer .trace").first.wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "box_plot.png"), full_page=True)
        assert page.locator(".js-plotly-plot .boxlayer .trace").count() == 2  # one box per recipe
        ticks = page.locator(".js-plotly-plot .xtick text").all_text_contents()  # SVG text has no innerText
        assert sorted(ticks) == ["tiny-a", "tiny-b"], ticks
        assert all(0 <= float(t) <= 1 for t in page.locator(".js-plotly-plot .ytick text").all_text_contents())

        # From MLflow's home page, as docs/mlflow.md says: Model training, Experiments, cifar10-bench;
        # the switch is kept by the browser, so a run opened from the table is not in GenAI mode.
        page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(ui.url)
        page.get_by_text("Model training", exact=True).first.wait_for()
        close_assistant(page)
        page.get_by_text("Model training", exact=True).first.click()
        page.get_by_text("Experiments", exact=True).first.click()
        page.get_by_text("cifar10-bench", exact=True).first.click()
        page.get_by_text("tiny-a [smoke]", exact=True).first.click()
        page.get_by_text("board/1_mean", exact=True).first.wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "run_from_home.png"), full_page=True)
        body = page.inner_text("body")
        assert "Evaluations" not in body and "Overview\nObservability" not in body, body[:400]
    except BaseException:
        print(f"screenshots in {shots}; bench ui log:\n{ui.log.read_text()[-3000:]}")
        raise
    finally:
        ui.stop()
