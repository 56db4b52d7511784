"""The MLflow UI as a person sees it, in a real headless Chromium: `bench ui` on a tiny sweep's store.

Opens the run list, a parent run, a child run (overview, metric charts, artifacts) and the compare
view of two parents, and asserts what a user must see there. Screenshots go to pytest's tmp_path
(printed on failure), never into the repository. Needs /usr/bin/chromium and playwright; skipped
with the reason where either is missing.
"""

from __future__ import annotations

import json
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
def tiny_store(tmp_path, synthetic_npz, test_config, monkeypatch) -> str:
    """2 recipes × 2 seeds, smoke profile, synthetic data, plus the leaderboard run."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["--config", str(test_config), "--data", str(synthetic_npz)]
    result = runner.invoke(main, [*base, "all", "--profile", "smoke", "--seeds", "2"])
    assert result.exit_code == 0, result.output
    board = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--plots", str(tmp_path / "board")])
    assert board.exit_code == 0, board.output
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def run_ids(store: str) -> dict[str, str]:
    """Run name → id."""
    from harness.tracking import Tracker

    tracker = Tracker(store)
    return {run.info.run_name: run.info.run_id for run in tracker.search("")}


def close_assistant(page) -> None:
    """MLflow 3 opens its assistant panel on a fresh browser's first visit; a user closes it."""
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():
        close.first.click()


@pytest.mark.slow
def test_compare_recipes_and_seeds_in_the_mlflow_ui(tiny_store, browser, tmp_path):
    ids = run_ids(tiny_store)
    ui = BenchUI(tiny_store, tmp_path / "ui.log")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        link = ui.wait_until_ready()
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

        # A parent: the recipe's params and its leaderboard row as metrics, its seeds linked.
        body = show(f"runs/{ids['tiny-a [smoke]']}", "board/mean_pct", "parent.png")
        for expected in ("board/mean_pct", "board/ci_low_pct", "board/rank", "architecture", "r004_step1"):
            assert expected in body, expected
        assert "training.batch_size" in body and "reported.test_accuracy" in body and "model.params" in body
        assert "seed 0 · tiny-a" in body and "seed 1 · tiny-a" in body  # Child runs
        assert "No parameters to display" not in body

        # A child: its description, dataset and settings as params; charts with accuracy first; artifacts.
        child = ids["seed 1 · tiny-a"]
        body = show(f"runs/{child}", "accuracy/test", "child.png")
        assert "Seed 1 of tiny-a" in body and "cifar10-train (" in body and "Parent run" in body
        assert "evaluation.batch_size" in body and "jit_compile.resolved" in body
        body = show(f"runs/{child}/model-metrics", "accuracy", "child_charts.png")
        sections = [line for line in body.splitlines() if line in ("accuracy", "loss", "overhead", "time", "training")]
        assert sections[:2] == ["accuracy", "loss"], sections
        show(f"runs/{child}/artifacts/confusion_matrix.png", "confusion_matrix.png", "child_artifacts.png")
        image = page.locator('img[alt="confusion_matrix.png"]').first
        image.wait_for()
        assert image.evaluate("img => img.complete && img.naturalWidth") > 300  # the image itself, drawn

        # The leaderboard run: its table, sortable.
        body = show(f"runs/{ids['leaderboard [smoke]']}/artifacts/leaderboard_table.json", "mean_pct", "board.png")
        assert "View as table" in body and "tiny-a" in body and "tiny-b" in body

        # Compare two parents: what differs between the recipes, and the headline metric charted.
        runs = json.dumps([ids["tiny-a [smoke]"], ids["tiny-b [smoke]"]])
        page.goto(f"{ui.url}/#/compare-runs?runs={runs}&experiments={json.dumps([experiment])}&{mode}")
        page.get_by_text("Comparing 2 Runs", exact=False).first.wait_for()
        close_assistant(page)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "compare.png"), full_page=True)
        body = page.inner_text("body")
        assert "Metrics:\nboard/mean_pct" in body  # the parallel-coordinates plot's default metric
        assert "augmentation\tnone\tflips" in body and "training.loss\tsparse_categorical_crossentropy" in body
        assert "board/mean_pct" in body.split("Show diff only")[2]  # in the metrics table too
    except BaseException:
        print(f"screenshots in {shots}; bench ui log:\n{ui.log.read_text()[-3000:]}")
        raise
    finally:
        ui.stop()
