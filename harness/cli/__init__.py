"""``bench``: the command line. The group and its global options are here; its commands live one
module per stage they serve (``catalogue``: list, data, cache; ``sweep``: run, all; ``results``:
leaderboard, steps, agreement, import; ``doctor``; ``ui``), sharing ``options``. Heavy imports
(TensorFlow, MLflow) happen inside the commands that need them, so ``bench --help`` and
``bench list`` answer at once."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli import catalogue, doctor, results, sweep, ui
from harness.cli.options import DEFAULT_CONFIG, BenchGroup, Context


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_CONFIG,
    envvar="BENCH_CONFIG",
    show_default=True,
    help="The benchmarks file: recipes, profiles, suites.",
)
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI [default: sqlite:///mlflow.db in the current directory, artifacts in ./mlruns].",
)
@click.option(
    "--data",
    "data_path",
    envvar="BENCH_DATA",
    help="CIFAR-10 as .npz (x_train, y_train, x_test, y_test), cifar-10-python.tar.gz, or "
    "cifar-10-batches-py/ [default: $BENCH_DATA, else the first existing path of [data] local_copies in the "
    "benchmarks file, else Keras' download]. `bench doctor` says which one a command will use.",
)
@click.option(
    "--weights-dir",
    envvar="BENCH_WEIGHTS_DIR",
    type=click.Path(file_okay=False, path_type=str),
    help="Folder holding the backbones' ImageNet *_notop.h5 files for transfer recipes, e.g. offline "
    "[default: $BENCH_WEIGHTS_DIR, then the Keras cache, then Keras' download].",
)
@click.option("--experiment", default="cifar10-bench", show_default=True, help="MLflow experiment name.")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="cifar10-bench")
@click.pass_context
def main(ctx: click.Context, config_path, tracking_uri, data_path, weights_dir, experiment, debug) -> None:
    """Benchmark the CIFAR-10 CNNs of five reports over several seeds, tracked in MLflow."""
    from harness.run.data import DATA_ENV

    ctx.obj = Context(config_path, tracking_uri, data_path, experiment, debug, weights_dir)
    if ctx.get_parameter_source("data_path") == click.core.ParameterSource.ENVIRONMENT:
        ctx.obj.data_origin = DATA_ENV


for command in (
    catalogue.list_command,
    catalogue.data_command,
    catalogue.cache_command,
    sweep.run_command,
    sweep.all_command,
    results.leaderboard_command,
    results.import_command,
    results.steps_command,
    results.agreement_command,
    doctor.doctor_command,
    ui.ui_command,
):
    main.add_command(command)
