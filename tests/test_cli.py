"""The command line through click's CliRunner, and its import discipline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from harness.cli import main
from tests.conftest import REAL_CONFIG


@pytest.fixture
def runner():
    return CliRunner()


def test_help_lists_commands(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("all", "run", "list", "leaderboard", "data"):
        assert command in result.output


def test_every_option_has_help(runner):
    for command in main.commands.values():
        for parameter in command.params:
            if parameter.param_type_name == "option":
                assert parameter.help, f"{command.name} {parameter.opts} has no help"
    for parameter in main.params:
        if parameter.param_type_name == "option" and parameter.name not in ("help", "version"):
            assert parameter.help, f"{parameter.opts} has no help"


def test_profile_help_names_every_profile_of_the_real_config():
    from harness.cli import PROFILE_HELP
    from harness.config import load_config
    from tests.conftest import REAL_CONFIG

    for name in load_config(REAL_CONFIG).profiles:
        assert name in PROFILE_HELP


@pytest.mark.parametrize("arguments", [["--help"], ["list"], ["list", "--json"]])
def test_no_tensorflow_or_mlflow_at_start(arguments):
    code = (
        "import sys; from harness.cli import main\n"
        f"try:\n    main({arguments!r} + [], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow', 'torch', 'jax') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    args = ["--config", str(REAL_CONFIG), *arguments] if arguments != ["--help"] else arguments
    code = code.replace(repr(arguments), repr(args))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_list_json_with_params(runner, test_config):
    result = runner.invoke(main, ["--config", str(test_config), "list", "--params", "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["name"] for r in records] == ["tiny-a", "tiny-b"]
    first = records[0]
    assert first["source"] == {"report": "004_ad376a161039476f.txt", "section": "1)"}
    assert first["reported"] == {"test_accuracy": 0.6207, "params": 92074}
    assert first["params"] == 92074 and first["params_match"] is True
    assert records[1]["reported"]["test_accuracy"] is None


def test_real_config_lists_report_004(runner):
    result = runner.invoke(main, ["--config", str(REAL_CONFIG), "list", "--json", "--suite", "report-004"])
    assert result.exit_code == 0
    assert [r["name"] for r in json.loads(result.output)] == [f"r004-step{i}" for i in range(1, 11)]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["run", "tiny-c"], "unknown recipe 'tiny-c'. Did you mean: tiny-b, tiny-a?"),
        (["all", "--suite", "big"], "unknown suite 'big'"),
        (["all", "--profile", "smok"], "unknown profile 'smok'. Did you mean: smoke"),
        (["all", "--only", "nothing-*"], "no recipe matches the selection"),
        (["all", "--seeds", "0"], "0 is not in the range"),
        (["leaderboard", "--format", "xml"], "'xml' is not one of"),
    ],
)
def test_bad_input_is_one_clear_line(runner, test_config, tmp_path, arguments, message):
    result = runner.invoke(
        main, ["--config", str(test_config), "--tracking-uri", f"sqlite:///{tmp_path}/m.db", *arguments]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_config_is_one_clear_line(runner, tmp_path):
    bad = tmp_path / "b.toml"
    bad.write_text("[[recipe]]\nname = 'x'\n")
    result = runner.invoke(main, ["--config", str(bad), "list"])
    assert result.exit_code == 1
    assert "missing field 'architecture'" in result.output


def test_data_command(runner, synthetic_npz, test_config):
    result = runner.invoke(main, ["--config", str(test_config), "--data", str(synthetic_npz), "data"])
    assert result.exit_code == 0, result.output
    assert "fingerprint" in result.output and "300 train / 100 validation" in result.output


def test_reading_commands_never_create_a_store(runner, tmp_path, test_config):
    store = tmp_path / "m.db"
    base = ["--config", str(test_config), "--tracking-uri", f"sqlite:///{store}"]
    result = runner.invoke(main, [*base, "leaderboard", "--format", "json"])
    assert result.exit_code == 1 and f"no MLflow store at sqlite:///{store}" in result.output
    assert not store.exists()
    bogus = runner.invoke(main, [*base, "leaderboard", "--profile", "smok"])
    assert bogus.exit_code == 1 and "unknown profile 'smok'. Did you mean: smoke" in bogus.output


def test_group_options_are_accepted_after_the_command(runner, test_config, synthetic_npz):
    result = runner.invoke(main, ["data", "--config", str(test_config), "--data", str(synthetic_npz)])
    assert result.exit_code == 0, result.output
    assert "300 train / 100 validation" in result.output
    listed = runner.invoke(main, ["list", "--json", "--config", str(test_config)])
    assert [r["name"] for r in json.loads(listed.output)] == ["tiny-a", "tiny-b"]


def test_unreachable_tracking_server_fails_before_training(runner, test_config, synthetic_npz):
    import time

    started = time.monotonic()
    result = runner.invoke(
        main,
        [
            "--config",
            str(test_config),
            "--data",
            str(synthetic_npz),
            "--tracking-uri",
            "http://127.0.0.1:9",
            "all",
            "--profile",
            "smoke",
        ],
    )
    assert result.exit_code == 1
    assert "cannot reach tracking server http://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output and "Checking the dataset" not in result.output
    assert time.monotonic() - started < 30


def test_transfer_recipe_without_weights_stops_before_training(runner, synthetic_npz, tmp_path, monkeypatch):
    """Offline and no --weights-dir: one line naming the file and its published hash; nothing trains,
    and the exit code is the documented 3 (recipes skipped for missing weights), not 1."""
    import keras.utils

    def offline(*args, **kwargs):  # never download in tests, even on a machine that could
        raise Exception("URL fetch failure (offline)")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    store = tmp_path / "m.db"
    base = ["--config", str(REAL_CONFIG), "--data", str(synthetic_npz), "--tracking-uri", f"sqlite:///{store}"]
    result = runner.invoke(main, [*base, "all", "--only", "r003-tl-basic", "--profile", "smoke"])
    assert result.exit_code == 3, result.output
    assert "no ImageNet weights for VGG16: vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in result.output
    assert "md5 6d6bbae143d832006294945121d1f1fc" in result.output and "--weights-dir" in result.output
    assert "Traceback" not in result.output and "no recipe of the selection can train" in result.output

    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(f"sqlite:///{store}").get_experiment_by_name("cifar10-bench")
    assert experiment is None or not MlflowClient(f"sqlite:///{store}").search_runs([experiment.experiment_id])


def test_a_bug_keeps_its_traceback(runner, test_config, monkeypatch):
    """Only errors meant for users (HarnessError) become one line; a KeyError is a bug."""
    from harness.config import BenchConfig

    def broken(self, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(BenchConfig, "select", broken)
    result = runner.invoke(main, ["--config", str(test_config), "list"])
    assert isinstance(result.exception, KeyError)


@pytest.mark.slow
def test_recipes_without_weights_are_skipped_and_the_rest_trains(runner, synthetic_npz, tmp_path, monkeypatch):
    """Offline, a CNN and a transfer recipe: the CNN trains, the transfer recipe is skipped with
    one line naming its weights file, listed again at the end, and the exit code (3) says so."""
    import keras.utils

    from harness.cli import EXIT_SKIPPED
    from tests.conftest import TEST_CONFIG

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure (offline)")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
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
    base = ["--config", str(config), "--data", str(synthetic_npz)]
    result = runner.invoke(main, [*base, "run", "tiny-a", "tiny-vgg", "--profile", "smoke", "--seeds", "1"])
    assert result.exit_code == EXIT_SKIPPED, result.output
    assert "skipping tiny-vgg: no ImageNet weights for VGG16" in result.output
    assert "1 trained, 0 already finished (skipped), 0 failed" in result.output
    assert "NOT TRAINED (pretrained weights missing; pass --weights-dir DIR): tiny-vgg" in result.output


def test_an_interrupt_that_escapes_the_sweep_never_says_nothing_was_trained(
    tmp_path, synthetic_npz, test_config, monkeypatch
):
    """A second Ctrl-C / SIGTERM while a sweep is stopping can reach the CLI without a report,
    after seeds did finish: the message must not say that nothing was trained. Before any run
    started, it says so instead of speaking of runs that finished."""
    from types import SimpleNamespace

    import harness.sweep

    def interrupted(config, tracker, recipes, settings, progress, **options):
        if started:
            progress.run_started(SimpleNamespace(identity=SimpleNamespace(identity="i"), label="tiny-a seed 0"), 0, 1)
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.sweep, "run_sweep", interrupted)
    monkeypatch.chdir(tmp_path)
    command = ["--config", str(test_config), "--data", str(synthetic_npz), "run", "tiny-a", "--profile", "smoke"]
    started = True
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 130
    assert "every run that finished is kept" in result.output and "nothing was trained" not in result.output
    started = False
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 130
    assert "Interrupted before any run started: nothing was trained" in result.output
    assert "every run that finished" not in result.output


def test_a_corrupt_store_is_one_line(tmp_path, test_config):
    """A file that is not an sqlite database where the store should be: one line naming it,
    without SQLAlchemy's SQL and links, exit 1."""
    (tmp_path / "mlflow.db").write_text("not a database\n" * 100)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(main, ["--config", str(test_config), "--tracking-uri", store, "leaderboard"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot use tracking store" in lines[0] and "file is not a database" in lines[0]


def test_a_split_that_cannot_be_made_fails_once_before_any_run(tmp_path, synthetic_npz, monkeypatch):
    """validation_size as large as the training set would fail in every worker: the sweep
    refuses it up front, in one line, and creates no run."""
    from tests.conftest import TEST_CONFIG

    config = tmp_path / "big-validation.toml"
    config.write_text(TEST_CONFIG.replace("validation_size = 100\n", "validation_size = 60000\n", 1))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["--config", str(config), "--data", str(synthetic_npz), "all", "--profile", "smoke", "--seeds", "1"]
    )
    assert result.exit_code == 1 and "validation_size must be between 1 and" in result.output
    assert "Traceback" not in result.output and "trained" not in result.output


def test_unknown_optimizer_options_fail_once_before_any_run(tmp_path, synthetic_npz, monkeypatch):
    from tests.conftest import TEST_CONFIG

    config = tmp_path / "bad-optimizer.toml"
    config.write_text(
        TEST_CONFIG.replace(
            "batch_size = 64, epochs = 30 }",
            "batch_size = 64, epochs = 30, optimizer_options = { beta_one = 0.8 } }",
            1,
        )
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["--config", str(config), "--data", str(synthetic_npz), "run", "tiny-a", "--profile", "smoke"]
    )
    assert result.exit_code == 1, result.output
    assert "recipe tiny-a: training.optimizer_options:" in result.output and "beta_one" in result.output


def test_the_configs_local_copy_is_used_when_no_dataset_is_given(tmp_path, synthetic_npz, monkeypatch):
    """[data] local_copies (relative to the config file) is where CIFAR-10 is looked for when
    neither --data nor $BENCH_DATA says: the README's main command then works offline with
    ../shared beside the clone. A missing copy is skipped."""
    from tests.conftest import TEST_CONFIG

    folder = tmp_path / "repo"
    folder.mkdir()
    config = folder / "benchmarks.toml"
    copies = f'local_copies = ["missing.npz", "../{synthetic_npz.name}"]\n'
    config.write_text(TEST_CONFIG.replace("split_seed = 7\n", "split_seed = 7\n" + copies, 1))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--config", str(config), "data"])
    assert result.exit_code == 0, result.output
    assert str(synthetic_npz) in result.output.replace("\n", "")


def test_doctor_names_the_dataset_a_sweep_would_read_and_why(tmp_path, synthetic_npz, monkeypatch):
    """[data] local_copies found: bench doctor names that file and the rule that chose it (it said
    "BENCH_DATA not set … Keras downloads CIFAR-10" while the local copy was used); --data and
    BENCH_DATA are named as such."""
    from harness.doctor import dataset_check
    from tests.conftest import TEST_CONFIG

    config = tmp_path / "benchmarks.toml"
    config.write_text(
        TEST_CONFIG.replace("split_seed = 7\n", f'split_seed = 7\nlocal_copies = ["{synthetic_npz}"]\n', 1)
    )
    seen = {}
    monkeypatch.setattr("harness.doctor.run_checks", lambda **options: seen.update(options) or [])
    monkeypatch.setattr("harness.environment.import_keras_quietly", lambda: None)  # not needed to choose
    assert CliRunner().invoke(main, ["--config", str(config), "doctor"]).exit_code == 0
    path, why = seen["dataset"]
    assert path == str(synthetic_npz) and "[data] local_copies" in why and "Keras" not in why
    check = dataset_check(path, why)
    assert check.status == "ok" and str(synthetic_npz) in check.detail
    assert CliRunner().invoke(main, ["--config", str(config), "doctor", "--data", "x.npz"]).exit_code == 0
    assert seen["dataset"] == ("x.npz", "from --data") and dataset_check(*seen["dataset"]).status == "problem"
    monkeypatch.setenv("BENCH_DATA", str(synthetic_npz))
    assert CliRunner().invoke(main, ["--config", str(config), "doctor"]).exit_code == 0
    assert seen["dataset"] == (str(synthetic_npz), "from BENCH_DATA")
    config.write_text(TEST_CONFIG)
    monkeypatch.delenv("BENCH_DATA")
    assert CliRunner().invoke(main, ["--config", str(config), "doctor"]).exit_code == 0
    assert seen["dataset"][0] is None and "Keras downloads CIFAR-10" in seen["dataset"][1]
