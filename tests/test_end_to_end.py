"""`bench all --profile smoke --seeds 2` on synthetic data: processes, MLflow, leaderboard, skip."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from harness.cli import main
from tests.conftest import SMOKE_SWEEP

pytestmark = pytest.mark.slow  # trains models in worker processes or starts servers


def test_smoke_sweep_logs_ranks_and_skips(tmp_path, synthetic_npz, test_config, monkeypatch, smoke_sweep):
    """SMOKE_SWEEP (run once per session in its own folder, copied here) on the default store,
    ./mlflow.db and ./mlruns: what each run and parent logs, the leaderboard, and a rerun that
    trains nothing."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["--config", str(test_config), "--data", str(synthetic_npz)]
    assert smoke_sweep.exit_code == 0, smoke_sweep.output
    assert "4 trained, 0 already finished" in smoke_sweep.output

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags["bench.kind"] == "parent"]
    children = [r for r in runs if r.data.tags["bench.kind"] == "child"]
    assert sorted(r.data.tags["bench.recipe"] for r in parents) == ["tiny-a", "tiny-b"]
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    for child in children:
        tags, metrics, params = child.data.tags, child.data.metrics, child.data.params
        assert tags["mlflow.parentRunId"] in {p.info.run_id for p in parents}
        assert {"bench.seed", "bench.config_hash", "bench.data_fingerprint", "bench.report"} <= set(tags)
        assert {
            "accuracy/test",
            "loss/test",
            "time/train_seconds",
            "time/images_per_second",
            "accuracy/validation",
            "training/epochs_run",
        } <= set(metrics)
        # settings are params, not charts; the learning rate is constant without reduce_lr_on_plateau
        assert not {"params", "trainable_params", "evaluation_batch", "jit_compile"} & set(metrics)
        assert not any("learning_rate" in name for name in metrics)
        assert params["model.params"] == "92074" and params["jit_compile.resolved"] in ("on", "off")
        assert int(params["evaluation.batch_size"]) >= 64 and int(params["model.trainable_params"]) > 0
        assert params["profile.name"] == "smoke" and params["data.train_images"] == "200"
        phases = ("startup", "import", "store", "data", "build", "logging")
        overhead = {p: metrics[f"overhead/{p}_seconds"] for p in phases}
        assert all(0 <= seconds < 120 for seconds in overhead.values()), overhead
        assert overhead["import"] > 0.1  # Keras and MLflow are imported in every worker
        assert params["keras_backend"] and params["training.batch_size"] == "64"
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"confusion_matrix.png", "confusion_matrix.csv", "model_summary.txt"} <= artifacts
        # worker.log only where the worker said more than TensorFlow's start-up lines: never empty
        assert all(a.file_size > 1 for a in client.list_artifacts(child.info.run_id) if a.path == "worker.log")
        assert "bench.claim" not in child.data.tags and "bench.heartbeat" not in child.data.tags  # not stale
        history = client.get_metric_history(child.info.run_id, "loss/validation")
        assert [m.step for m in history] == [1]
    for parent in parents:
        assert not {"n", "test_accuracy_mean", "test_accuracy_std"} & set(parent.data.metrics)  # no duplicates
        # a budget profile's parent says so first, with its agreement with full (none here)
        assert parent.data.tags["mlflow.note.content"].startswith("Budget profile `smoke`: at most 1 epoch on 200")
        # the recipe's leaderboard figures and its settings: what the UI sorts and compares parents by
        assert parent.data.metrics["board/3_n"] == 2 and 0 <= parent.data.metrics["board/1_mean"] <= 1
        changed = {"tiny-a": "baseline", "tiny-b": "augmented, one-hot loss, early stopping vs tiny-a: augmentation "
                   "none → flips; adds early_stopping (monitor=val_loss, patience=2); training.loss "
                   "sparse_categorical_crossentropy → categorical_crossentropy"}  # fmt: skip
        assert parent.data.params["what_changed"] == changed[parent.data.tags["bench.recipe"]]
        assert parent.data.params["architecture"] == "r004_step1" and parent.data.params["model.params"] == "92074"
        bands = {a.path: a.file_size for a in client.list_artifacts(parent.info.run_id, "seed_bands")}
        assert set(bands) == {"seed_bands/learning_curves.png", "seed_bands/mean_confusion.png"}
        assert all(size > 10_000 for size in bands.values())

    board = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--format", "json"])
    assert board.exit_code == 0, board.output
    rows = json.loads(board.stdout)
    assert {r["recipe"]: r["n"] for r in rows} == {"tiny-a": 2, "tiny-b": 2}
    for row in rows:
        assert 0 <= row["mean"] <= 1 and row["std"] is not None and row["seeds"] == [0, 1]
    assert rows[0]["mean"] >= rows[1]["mean"]

    plotted = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--plots", str(tmp_path / "board")])
    assert plotted.exit_code == 0, plotted.output
    # smoke caps epochs and images: a budget profile, so no claimed-vs-measured plot
    expected = {"leaderboard.md", "leaderboard.csv", "leaderboard.json", "seed_spread.png", "accuracy_vs_params.png"}
    assert (tmp_path / "board" / "leaderboard.md").read_text().startswith("Budget profile `smoke`: at most 1 epoch")
    assert {p.name for p in (tmp_path / "board").iterdir()} == expected
    assert all((tmp_path / "board" / name).stat().st_size > 200 for name in expected)
    board_runs = [
        r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["bench.kind"] == "leaderboard"
    ]
    assert len(board_runs) == 1
    # the files, and the board as a table the UI sorts
    assert {a.path for a in client.list_artifacts(board_runs[0].info.run_id)} == expected | {"leaderboard_table.json"}
    runs = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["bench.kind"] != "leaderboard"]

    again = runner.invoke(main, [*base, *SMOKE_SWEEP])
    assert again.exit_code == 0, again.output
    assert "0 trained, 4 already finished" in again.output
    assert len(client.search_runs([experiment.experiment_id])) == len(runs) + 1


def test_readme_blocks_and_published_results(tmp_path, synthetic_npz, test_config, monkeypatch, smoke_sweep):
    """--update-readme rewrites only its block and is idempotent; bench steps fills its own block;
    --publish writes a record of each run, whole, that reads back as the same board; --min-seeds drops
    the rest."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["--config", str(test_config), "--data", str(synthetic_npz)]
    assert smoke_sweep.exit_code == 0  # tiny-a and tiny-b, 2 seeds each
    assert runner.invoke(main, [*base, "run", "tiny-a", "--profile", "smoke", "--seeds", "3"]).exit_code == 0
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\nintro\n\n<!-- leaderboard:smoke:start -->\nold\n<!-- leaderboard:smoke:end -->\n\n"
        "<!-- steps:smoke:start -->\n<!-- steps:smoke:end -->\nfooter\n"
    )
    first = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--update-readme"])
    assert first.exit_code == 0, first.output
    text = readme.read_text()
    assert text.startswith(
        "# Title\n\nintro\n\n<!-- leaderboard:smoke:start -->\nBudget profile `smoke`: at most 1 epoch on 200 images"
    )
    assert "\n\nProfile `smoke`, 2–3 seeds per recipe" in text
    assert "old" not in text and text.endswith("<!-- steps:smoke:start -->\n<!-- steps:smoke:end -->\nfooter\n")
    assert "| tiny-a | 3 |" in text and "| tiny-b | 2 |" in text and "code commit" in text and "hardware:" in text
    second = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--update-readme"])
    assert "already up to date" in second.output and readme.read_text() == text
    no_profile = runner.invoke(main, [*base, "leaderboard", "--update-readme"])
    assert no_profile.exit_code != 0 and "need --profile" in no_profile.output

    stepped = runner.invoke(main, [*base, "steps", "--profile", "smoke", "--update-readme"])
    assert stepped.exit_code == 0, stepped.output
    assert "tiny-b" in readme.read_text().split("<!-- steps:smoke:start -->")[1]

    three = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--min-seeds", "3", "--format", "json"])
    assert [row["recipe"] for row in json.loads(three.stdout)] == ["tiny-a"]

    published = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--publish"])
    assert published.exit_code == 0, published.output
    assert "results/runs: 5 written, 0 unchanged" in published.output
    files = sorted((tmp_path / "results" / "runs" / "smoke" / "cpu").glob("*/seed-*.json"))
    assert [(f.parent.name, f.name.split("-")[1]) for f in files] == [
        ("tiny-a", "0"), ("tiny-a", "1"), ("tiny-a", "2"), ("tiny-b", "0"), ("tiny-b", "1"),
    ]  # fmt: skip
    for path in files:  # a real worker's run, whole: what it logged, its one epoch, where and with what
        record = json.loads(path.read_text())
        assert record["made_by"].startswith("bench leaderboard --profile smoke --publish (harness ")
        assert record["params"]["keras_backend"] == "tensorflow" and "version.keras" in record["params"]
        assert record["params"]["hardware"] and record["params"]["code_commit"] and record["params"]["model.params"]
        assert {len(values) for values in record["curves"].values()} == {1} and len(record["curves"]) == 4
        assert record["run"]["resumed"] is False and record["run"]["started"] < record["run"]["finished"]
        assert 0 <= record["metrics"]["accuracy/test"] <= 1 and record["metrics"]["training/epochs_run"] == 1
        assert path.stat().st_size < 4000
    # The records alone (no store) give the same board.
    stored = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--format", "json", "--source", "store"])
    recorded = runner.invoke(
        main, [*base, "leaderboard", "--profile", "smoke", "--format", "json", "--source", "results"]
    )
    assert json.loads(recorded.stdout) == json.loads(stored.stdout)


def test_frozen_transfer_recipe_with_random_weights_reuses_cached_features(tmp_path, synthetic_npz, monkeypatch):
    """Report 002's frozen VGG16 (32×32 input, cheap): seed 0 computes the backbone features,
    seed 1 reads them from the cache; the runs are tagged as random-weights runs."""
    from tests.conftest import TEST_CONFIG

    config = tmp_path / "benchmarks.toml"
    config.write_text(
        TEST_CONFIG
        + """
[[recipe]]
name = "tiny-vgg"
architecture = "r002_proyecto_10"
summary = "frozen VGG16 features, Dense head"
source = { report = "002_89f48582401a5c62.txt", section = "PROYECTO 10:" }
training = { optimizer = "adam", learning_rate = 0.001, loss = "categorical_crossentropy", batch_size = 64, epochs = 3 }
"""
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    base = ["--config", str(config), "--data", str(synthetic_npz)]
    result = CliRunner().invoke(
        main, [*base, "all", "--only", "tiny-vgg", "--profile", "smoke", "--seeds", "2", "--random-weights"]
    )
    assert result.exit_code == 0, result.output
    assert "Checking pretrained weights" not in result.output

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    children = {
        int(r.data.tags["bench.seed"]): r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags["bench.kind"] == "child"
    }
    assert (
        children[0].data.metrics["features/cache_misses"] == 3 and children[0].data.metrics["features/cache_hits"] == 0
    )
    assert (
        children[1].data.metrics["features/cache_hits"] == 3 and children[1].data.metrics["features/cache_misses"] == 0
    )
    for child in children.values():
        assert child.data.tags["bench.weights"] == "random"
        assert child.data.params["weights"].startswith("random initialisation")
        assert child.data.params["model.params"] == "16819530"
        assert child.data.params["evaluation.batch_size"] == "1024"  # the head on 512 features: full size

    # The sweep's own leaderboard shows the runs it just trained; `bench leaderboard` only with the flag.
    assert "tiny-vgg" in result.output.split("Leaderboard")[-1]

    def ranked(*extra):
        board = CliRunner().invoke(main, [*base, "leaderboard", "--profile", "smoke", "--format", "json", *extra])
        return {row["recipe"]: row["n"] for row in json.loads(board.stdout)}

    assert ranked("--random-weights") == {"tiny-vgg": 2}
    assert ranked() == {}


def test_mixed_precision_runs_are_their_own_identity(tmp_path, synthetic_npz, test_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    base = ["--config", str(test_config), "--data", str(synthetic_npz)]
    result = runner.invoke(
        main, [*base, "all", "--only", "tiny-a", "--profile", "smoke", "--seeds", "1", "--precision", "mixed_bfloat16"]
    )
    assert result.exit_code == 0, result.output
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    [child] = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["bench.kind"] == "child"]
    assert child.info.status == "FINISHED" and child.data.params["precision"] == "mixed_bfloat16"

    def ranked(*extra):
        output = runner.invoke(main, [*base, "leaderboard", "--profile", "smoke", "--format", "json", *extra]).stdout
        return {row["recipe"]: row["n"] for row in json.loads(output)}

    assert ranked("--precision", "mixed_bfloat16") == {"tiny-a": 1}
    assert ranked() == {}  # the float32 leaderboard never shows another configuration's runs
    # The float32 sweep does not reuse the mixed run: it trains its own.
    result = runner.invoke(main, [*base, "all", "--only", "tiny-a", "--profile", "smoke", "--seeds", "1"])
    assert "1 trained, 0 already finished" in result.output


def test_a_recalibrating_profile_logs_what_recalibration_changed(tmp_path, synthetic_npz, monkeypatch):
    """A profile with bn_recalibration_images: a BatchNorm model's run logs how many layers were
    recalibrated, the test accuracy before (accuracy/test_before_bn_recalibration) and the time
    it took; a model without BatchNorm logs 0 layers and nothing else. Both say their budget."""
    from tests.conftest import TEST_CONFIG

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "benchmarks.toml"
    config.write_text(
        TEST_CONFIG.replace("test_size = 100\n", "test_size = 100\nbn_recalibration_images = 64\n", 1)
        + """
[[recipe]]
name = "tiny-bn"
base = "tiny-a"
architecture = "r004_step3"
summary = "BatchNorm after every conv"
source = { report = "004_ad376a161039476f.txt", section = "3)" }
"""
    )
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["--config", str(config), "--data", str(synthetic_npz), "run", "tiny-a", "tiny-bn", "--profile", "smoke"]
        + ["--seeds", "1"],
    )
    assert result.exit_code == 0, result.output
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    runs = client.search_runs([experiment.experiment_id])
    children = {r.data.tags["bench.recipe"]: r for r in runs if r.data.tags["bench.kind"] == "child"}
    with_bn, without = children["tiny-bn"].data, children["tiny-a"].data
    assert (
        with_bn.params["bn_recalibration.layers"] == "4" and with_bn.params["profile.bn_recalibration_images"] == "64"
    )
    assert 0 <= with_bn.metrics["accuracy/test_before_bn_recalibration"] <= 1
    assert with_bn.metrics["time/bn_recalibration_seconds"] > 0
    assert without.params["bn_recalibration.layers"] == "0"
    assert "accuracy/test_before_bn_recalibration" not in without.metrics
    parents = [r for r in runs if r.data.tags["bench.kind"] == "parent"]
    assert all(p.data.tags["mlflow.note.content"].startswith("Budget profile `smoke`") for p in parents)
