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
    from harness.cli.sweep import PROFILE_HELP
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

    from harness.cli.sweep import EXIT_SKIPPED
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

    import harness.sweep.sweep

    def interrupted(config, tracker, recipes, settings, progress, **options):
        if started:
            progress.run_started(SimpleNamespace(identity=SimpleNamespace(identity="i"), label="tiny-a seed 0"), 0, 1)
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.sweep.sweep, "run_sweep", interrupted)
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


def test_reading_commands_never_write_a_store(tmp_path, synthetic_npz, test_config, monkeypatch):
    """`run --dry-run` created mlflow.db, its lock and the experiment in a fresh folder;
    `leaderboard` and `steps` wrote MLflow's schema into an empty mlflow.db. Reading commands
    write nothing: a missing or empty store is one with nothing finished (a dry run) or one line."""
    monkeypatch.chdir(tmp_path)
    base = ["--config", str(test_config), "--data", str(synthetic_npz)]
    before = sorted(p.name for p in tmp_path.iterdir())
    dry = CliRunner().invoke(main, [*base, "run", "tiny-a", "--profile", "smoke", "--seeds", "1", "--dry-run"])
    assert dry.exit_code == 0 and "would train tiny-a seed 0" in dry.output, dry.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    (tmp_path / "mlflow.db").touch()  # an empty file where a store would be
    for command in (["leaderboard"], ["steps", "--profile", "smoke"], ["all", "--profile", "smoke", "--dry-run"]):
        result = CliRunner().invoke(main, [*base, *command])
        assert (tmp_path / "mlflow.db").stat().st_size == 0, command
        assert "Traceback" not in result.output and (result.exit_code == 0) == ("--dry-run" in command), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "mlflow.db"])


def test_doctor_names_the_dataset_a_sweep_would_read_and_why(tmp_path, synthetic_npz, monkeypatch):
    """[data] local_copies found: bench doctor names that file and the rule that chose it (it said
    "BENCH_DATA not set … Keras downloads CIFAR-10" while the local copy was used); --data and
    BENCH_DATA are named as such."""
    from harness.cli.doctor import dataset_check
    from tests.conftest import TEST_CONFIG

    config = tmp_path / "benchmarks.toml"
    config.write_text(
        TEST_CONFIG.replace("split_seed = 7\n", f'split_seed = 7\nlocal_copies = ["{synthetic_npz}"]\n', 1)
    )
    seen = {}
    monkeypatch.setattr("harness.cli.doctor.run_checks", lambda **options: seen.update(options) or [])
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


def test_leaderboard_with_and_without_profile_agree_after_a_profile_is_edited(tmp_path):
    """Editing a profile gives its recipes new identities: their old runs are never ranked as
    current, with or without --profile; --include-stale shows them, marked, in every format."""
    from harness.config import load_config
    from harness.store.tracking import Tracker
    from tests.conftest import TEST_CONFIG
    from tests.standins import log_runs

    micro = '[profiles.micro]\ndescription = "tiny"\nmax_epochs = 1\ntrain_size = 100\n\n[suites]'
    config = tmp_path / "benchmarks.toml"
    config.write_text(TEST_CONFIG.replace("[suites]", micro, 1))
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(store)
    values = {"tiny-a": [0.50, 0.55, 0.52], "tiny-b": [0.40, 0.45, 0.42]}
    log_runs(tracker, load_config(config), values, profile="smoke")
    log_runs(tracker, load_config(config), values, profile="micro")
    config.write_text(config.read_text().replace("train_size = 100", "train_size = 150"))  # micro edited

    def board(*options: str) -> list[dict]:
        result = CliRunner().invoke(
            main, ["--config", str(config), "--tracking-uri", store, "leaderboard", "--format", "json", *options]
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    everything = board()
    for profile in ("smoke", "micro"):
        assert [r for r in everything if r["profile"] == profile] == board("--profile", profile)
    assert {r["profile"] for r in everything} == {"smoke"}  # micro's runs are of a configuration gone

    with_stale = board("--include-stale")
    assert [r for r in with_stale if not r["stale"]] == everything
    stale = [r for r in with_stale if r["stale"]]
    assert sorted((r["profile"], r["recipe"], r["n"]) for r in stale) == [
        ("micro", "tiny-a", 3),
        ("micro", "tiny-b", 3),
    ]
    assert with_stale == board("--include-stale", "--profile", "micro") + board("--include-stale", "--profile", "smoke")
    for output_format in ("markdown", "csv", "table"):
        shown = (
            CliRunner()
            .invoke(
                main,
                [
                    "--config",
                    str(config),
                    "--tracking-uri",
                    store,
                    "leaderboard",
                    "--format",
                    output_format,
                    "--include-stale",
                ],
            )
            .output
        )
        assert "tiny-a (stale " in shown if output_format != "csv" else ",True\n" in shown, shown


def test_a_cost_estimate_failure_stops_the_sweep_before_anything_trains(tmp_path, synthetic_npz, monkeypatch):
    """The estimate builds each recipe's model in a probe process: when that fails the runs
    would fail too, so the sweep stops there in one line (it used to print a note and train)."""
    from harness.errors import HarnessError
    from harness.sweep import sweep
    from tests.conftest import TEST_CONFIG

    def failing(*args, **kwargs):
        raise HarnessError("measuring the recipes' cost failed: recipe tiny-a: ValueError: bad layer (injected)")

    monkeypatch.setattr(sweep, "estimate", failing)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "benchmarks.toml"
    config.write_text(TEST_CONFIG)
    result = CliRunner().invoke(
        main, ["--config", str(config), "--data", str(synthetic_npz), "all", "--profile", "smoke", "--seeds", "1"]
    )
    assert result.exit_code == 1, result.output
    assert "recipe tiny-a: ValueError: bad layer (injected); nothing was trained" in result.output
    assert "Traceback" not in result.output and "seed 0" not in result.output


def test_the_probe_names_the_recipe_it_could_not_measure(monkeypatch, capsys, test_config):
    import io

    from harness.cost import probe

    def broken(config, recipe, **options):
        raise ValueError("Input 0 of layer is incompatible\nmore detail")

    monkeypatch.setattr(probe, "measure", broken)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"config": str(test_config), "recipes": ["tiny-b"]})))
    assert probe.main() == 1
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == "recipe tiny-b: ValueError: Input 0 of layer is incompatible"
    )


def test_a_dry_run_on_ray_without_ray_fails_as_the_run_would(tmp_path, synthetic_npz, test_config, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    base = ["--config", str(test_config), "--data", str(synthetic_npz), "all", "--profile", "smoke"]
    for extra in (["--dry-run"], []):
        result = CliRunner().invoke(main, [*base, "--executor", "ray", *extra])
        assert result.exit_code == 1, result.output
        assert "--executor ray needs Ray: pip install 'cifar10-bench[ray]'" in result.output
        assert "Checking the dataset" not in result.output  # before anything is read


def test_planning_is_linear_in_the_number_of_runs(tmp_path, synthetic_npz, test_config, monkeypatch):
    """A dry run of 2 recipes × 1000 seeds, 100 of them finished: no planned run is compared
    with the whole plan (it was: 2,000 runs made 2 million comparisons; 9,440 took 50 s)."""
    import time

    from harness.config import load_config
    from harness.identity import identify
    from harness.run.data import load_cifar10
    from harness.store.tracking import Tracker
    from harness.sweep import sweep
    from harness.sweep.plan import RunSpec

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config, tracker = load_config(test_config), Tracker(store)
    fingerprint = load_cifar10(synthetic_npz).fingerprint
    for seed in range(100):
        identity = identify(config, config.recipe("tiny-a"), "smoke", seed, fingerprint)
        tracker.finish(tracker.child_run(identity, tracker.parent_run(identity, description="x")))
    monkeypatch.setattr(sweep, "announce_cost", lambda *args, **kwargs: {})  # the cost is not what is timed
    comparisons = []
    real_eq = RunSpec.__eq__
    monkeypatch.setattr(RunSpec, "__eq__", lambda self, other: comparisons.append(1) or real_eq(self, other))
    start = time.monotonic()
    result = CliRunner().invoke(
        main,
        ["--config", str(test_config), "--tracking-uri", store, "--data", str(synthetic_npz)]
        + ["all", "--profile", "smoke", "--seeds", "1000", "--dry-run"],
    )
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    assert "Dry run: 1900 run(s) would train" in result.output
    assert len(comparisons) <= 2000 and elapsed < 60, (len(comparisons), elapsed)


def test_splitting_finished_runs_is_one_pass():
    from harness.config import load_config
    from harness.sweep.plan import plan, split_finished
    from tests.conftest import REAL_CONFIG

    config = load_config(REAL_CONFIG)
    specs = plan(config, list(config.recipes.values()), profile="micro", seeds=list(range(50)), data_fingerprint="x")
    finished = {spec.identity.identity for spec in specs[::3]}
    todo, done = split_finished(specs, finished)
    assert len(todo) + len(done) == len(specs) == 50 * len(config.recipes)
    assert todo == [s for s in specs if s.identity.identity not in finished] and done == specs[::3]


@pytest.fixture(scope="module")
def store_with_runs(tmp_path_factory):
    """A folder with a store of finished runs, a file where a folder could go and a README
    without markers; the benchmarks file and store options as a command starts with them."""
    from harness.config import load_config
    from harness.store.tracking import Tracker
    from tests.conftest import TEST_CONFIG
    from tests.standins import log_runs

    folder = tmp_path_factory.mktemp("outputs")
    config = folder / "benchmarks.toml"
    config.write_text(TEST_CONFIG)
    store = f"sqlite:///{folder / 'mlflow.db'}"
    log_runs(Tracker(store), load_config(config), {"tiny-a": [0.5, 0.6, 0.55], "tiny-b": [0.4, 0.45, 0.5]})
    (folder / "a-file").write_text("not a folder\n")
    (folder / "README.md").write_text("no markers here\n")
    return folder, ["--config", str(config), "--tracking-uri", store]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["leaderboard", "--format", "csv", "--output", "{tmp}/none/x.csv"], "--output {tmp}/none/x.csv: its folder"),
        (["steps", "--profile", "smoke", "--output", "{tmp}/none/x.md"], "--output {tmp}/none/x.md: its folder"),
        (["leaderboard", "--format", "csv", "--output", "{tmp}"], "is a directory"),
        (["leaderboard", "--profile", "smoke", "--update-readme", "{tmp}/none.md"], "none.md: no such file"),
        (["steps", "--profile", "smoke", "--update-readme", "{tmp}/none.md"], "none.md: no such file"),
        (["leaderboard", "--profile", "smoke", "--update-readme", "{tmp}/README.md"], "needs exactly one <!--"),
        (["leaderboard", "--profile", "smoke", "--update-readme", "{tmp}"], "is a directory"),
        (["leaderboard", "--profile", "smoke", "--plots", "{tmp}/a-file"], "is a file"),
        (["leaderboard", "--profile", "smoke", "--plots", "{tmp}/a-file/sub"], "lies under {tmp}/a-file, a file"),
        (
            ["leaderboard", "--profile", "smoke", "--publish", "--results", "{tmp}/a-file/sub"],
            "--results {tmp}/a-file/sub: lies under {tmp}/a-file, a file",
        ),
        (["steps", "--profile", "smoke", "--plots", "{tmp}/a-file/sub"], "lies under {tmp}/a-file, a file"),
        (["--config", "{tmp}", "list"], "{tmp}: a folder, not a TOML file"),
    ],
)
def test_a_path_that_cannot_be_written_is_one_line_and_nothing_is_written(store_with_runs, arguments, message):
    tmp_path, options = store_with_runs
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    result = CliRunner().invoke(main, [*options, *arguments])
    assert result.exit_code in (1, 2) and message.format(tmp=tmp_path) in result.output, result.output
    assert not isinstance(result.exception, OSError) and "Traceback" not in result.output
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before  # nothing written, nothing half-written


def test_a_write_that_fails_leaves_the_old_file_whole(tmp_path, store_with_runs, monkeypatch):
    """The rename of a finished temporary file is the only step that touches the target: when
    it fails, the README is as it was and no temporary file is left."""
    import os

    readme = tmp_path / "README.md"
    readme.write_text("# title\n<!-- leaderboard:smoke:start -->\nold\n<!-- leaderboard:smoke:end -->\n")
    original = readme.read_text()

    def refused(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    for arguments in (
        ["leaderboard", "--profile", "smoke", "--update-readme", str(readme)],
        ["leaderboard", "--profile", "smoke", "--publish", "--results", str(tmp_path / "results")],
        ["leaderboard", "--format", "csv", "--output", str(tmp_path / "board.csv")],
    ):
        result = CliRunner().invoke(main, [*store_with_runs[1], *arguments])
        assert result.exit_code == 1 and "cannot write: Permission denied" in result.output, result.output
    assert readme.read_text() == original and not (tmp_path / "board.csv").exists()
    assert not list(tmp_path.rglob("*.tmp")) and not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]


def test_a_published_record_never_carries_credentials(tmp_path, store_with_runs, monkeypatch):
    """A record's made_by is the command that published it: a tracking URI in it is redacted."""
    from harness.cli import results as cli

    secret = "https://alice:s3cret@mlflow.example.com/?token=t0ken"
    monkeypatch.setattr(cli, "command_line", lambda: ["bench", "--tracking-uri", secret, "leaderboard", "--publish"])
    result = CliRunner().invoke(
        main, [*store_with_runs[1], "leaderboard", "--profile", "smoke", "--publish", "--results", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("*.json")]
    assert len(records) == 6
    for record in records:
        assert "s3cret" not in record["made_by"] and "t0ken" not in record["made_by"]
        assert record["made_by"].startswith(
            "bench --tracking-uri https://***@mlflow.example.com/?token=*** leaderboard"
        )
