"""``bench``: the command line. Heavy imports (TensorFlow, MLflow) happen inside the commands
that need them, so ``bench --help`` and ``bench list`` answer at once."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from harness import files as outputs
from harness.config import BenchConfig, load_config
from harness.errors import HarnessError, TrackingError, WeightsMissing
from harness.identity import PRECISIONS
from harness.sweep.plan import SweepSettings

DEFAULT_CONFIG = "benchmarks.toml"
EXIT_SKIPPED = 3  # everything that could train did, but some recipes (or all) could not: missing weights
EXIT_BUDGET = 4  # the time budget ran out with runs paused or not started; the same command continues


@dataclass
class Context:
    config_path: Path
    tracking_uri: str | None
    data_path: str | None
    experiment: str
    debug: bool
    weights_dir: str | None = None
    data_origin: str = "--data"  # where data_path came from: --data or BENCH_DATA
    _config: BenchConfig | None = None

    @property
    def dataset(self) -> str | None:
        """CIFAR-10 to use: --data, else $BENCH_DATA, else the first of the config's [data]
        local_copies that exists, else None (Keras downloads it)."""
        import os

        from harness.run.data import DATA_ENV

        if self.data_path or os.environ.get(DATA_ENV):
            return self.data_path
        local = self.config.local_dataset()
        return None if local is None else str(local)

    def dataset_choice(self) -> tuple[str | None, str]:
        """The dataset a command will read (``dataset``) and why that one, in words."""
        from harness.run.data import DATA_ENV

        if self.data_path:
            return self.data_path, f"from {DATA_ENV if self.data_origin == DATA_ENV else '--data'}"
        try:
            local = self.config.local_dataset()
        except HarnessError as error:
            return None, f"no --data, no {DATA_ENV}, and no benchmarks file read ({error}): Keras downloads CIFAR-10"
        if local is not None:
            return str(local), (
                f"the first existing path of [data] local_copies in {self.config_path} "
                f"(--data or {DATA_ENV} would take precedence)"
            )
        return None, (
            f"no --data, no {DATA_ENV}, and no path of [data] local_copies in {self.config_path} exists: "
            "Keras downloads CIFAR-10 on first use"
        )

    @property
    def config(self) -> BenchConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def tracker(self, *, create: bool = True):
        """The MLflow store; ``create=False`` for commands that only read (they never create one)."""
        from harness.store.tracking import fold_mlflow_errors, open_tracker

        fold_mlflow_errors(not self.debug)  # MLflow's ERROR tracebacks: the harness says each failure in one line
        tracker = open_tracker(self.tracking_uri, self.experiment, create=create)
        tracker.command_line = ["bench", *_arguments()]
        tracker.command = _command_line()
        return tracker


def _arguments() -> list[str]:
    """The arguments `bench` was given (under a CliRunner, not ``sys.argv``: that is pytest's)."""
    context = click.get_current_context(silent=True)
    return sys.argv[1:] if context is None else context.meta.get(ARGUMENTS_KEY, sys.argv[1:])


def _command_line() -> list[str]:
    """``bench all --profile smoke --seeds 2``: the command being run and its arguments, without
    the global options before it (the MLflow UI's Source column shows the start of it)."""
    context = click.get_current_context(silent=True)
    arguments = _arguments()
    if context is not None and context.info_name in arguments:
        arguments = arguments[arguments.index(context.info_name) :]
    return ["bench", *arguments]


_pass_context = click.make_pass_decorator(Context)

# The group's options a user may also write after the command (`bench data --data X`): the later
# one wins. (flag, Context field, help)
COMMAND_LEVEL_OPTIONS = (
    ("--config", "config_path", "The benchmarks file (also accepted before the command)."),
    ("--data", "data_path", "CIFAR-10 to use (also accepted before the command; see `bench --help`)."),
    ("--tracking-uri", "tracking_uri", "MLflow tracking URI (also accepted before the command)."),
    ("--weights-dir", "weights_dir", "Folder of the backbones' ImageNet weights (also accepted before the command)."),
    ("--experiment", "experiment", "MLflow experiment name (also accepted before the command)."),
)


def _override(field: str):
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is not None:
            context = ctx.find_object(Context)
            setattr(context, field, Path(value) if field == "config_path" else value)
            if field == "data_path":
                context.data_origin = "--data"
            if field == "config_path":
                context._config = None
        return value

    return callback


def pass_context(command):
    """Pass the group's Context to ``command`` and accept the group's options after the command
    too, so that `bench data --data X` means what `bench --data X data` does."""
    command = _pass_context(command)
    for flag, field, text in reversed(COMMAND_LEVEL_OPTIONS):
        command = click.option(flag, callback=_override(field), expose_value=False, is_eager=True, help=text)(command)
    return command


ARGUMENTS_KEY = "bench.arguments"  # ctx.meta: the arguments `bench` was given (sys.argv under a CliRunner is pytest's)


class BenchGroup(click.Group):
    """Turns the harness's errors meant for users (``HarnessError``) into one clear line, with
    the traceback only under --debug. Anything else is a bug and keeps its traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGUMENTS_KEY] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HarnessError as error:
            if ctx.obj is not None and ctx.obj.debug:
                raise
            from harness.store.tracking import redacted

            raise click.ClickException(redacted(str(error))) from None  # never a URI's credentials


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


def _rich_console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # A pipe or file gets the width COLUMNS says, else the full table (not one squeezed into 80 columns).
    width = os.environ.get("COLUMNS", "")
    return Console(stderr=stderr, width=None if stream.isatty() else int(width) if width.isdigit() else 220)


def _source_cell(source: dict[str, str]) -> str:
    """'004 § 7)' for a report file named 004_….txt; the whole name for anything else."""
    report = source["report"]
    short = report[:3] if report[:3].isdigit() and report[3:4] == "_" else report
    return f"{short} § {source['section']}"


def _count_params(architecture: str) -> int:
    import architectures
    from harness.environment import import_keras_quietly

    import_keras_quietly()

    return int(architectures.build(architecture).count_params())


@main.command("list")
@click.option(
    "--params", "with_params", is_flag=True, help="Build each model and count its parameters (imports Keras)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per recipe) instead of a table.")
@click.option("--suite", help="Only recipes of this suite (see [suites] in the benchmarks file).")
@click.option("--only", metavar="GLOB", help="Only recipes whose name matches this glob, e.g. 'r004-*'.")
@click.option(
    "--cost",
    "with_cost",
    is_flag=True,
    help="What one run of each recipe costs under --profile: FLOPs counted from the built model, images, the "
    "epochs it is expected to train (finished runs' mean, else at most the profile's), and seconds on this "
    "machine (from a measured probe, else from FLOPs) and on the reference GPU (measured there).",
)
@click.option(
    "--measure",
    is_flag=True,
    help="With --cost: probe every listed recipe not yet measured on this machine (training steps until the "
    "timing is steady; minutes for the 224x224 transfer models). Results are cached.",
)
@click.option(
    "--calibrate",
    is_flag=True,
    help="With --cost: set this machine's estimate against every finished run of the listed recipes at --profile "
    "on this device class (the store and results/runs): estimated ÷ measured seconds per run.",
)
@click.option("--profile", default="full", show_default=True, help="With --cost: the budget to cost the runs under.")
@click.option(
    "--sort",
    type=click.Choice(["file", "name", "cost"]),
    default="file",
    show_default=True,
    help="Order of the recipes: as in the recipe files, by name, or by estimated seconds (with --cost).",
)
@pass_context
def list_command(
    context: Context,
    with_params: bool,
    as_json: bool,
    suite: str | None,
    only: str | None,
    with_cost: bool,
    measure: bool,
    calibrate: bool,
    profile: str,
    sort: str,
) -> None:
    """List the registered recipes, their source and what their report claims (--cost: and what
    one run of each costs)."""
    recipes = context.config.select(suite=suite, only=only)
    if sort == "name":
        recipes = sorted(recipes, key=lambda r: r.name)
    if calibrate and not with_cost:
        raise click.UsageError("--calibrate needs --cost")
    if with_cost:
        _print_costs(
            context,
            recipes,
            profile=profile,
            measure=measure,
            as_json=as_json,
            by_cost=sort == "cost",
            calibrate=calibrate,
        )
        return
    counted = {}
    if with_params:
        for architecture in dict.fromkeys(r.architecture for r in recipes):
            counted[architecture] = _count_params(architecture)
    records = []
    for recipe in recipes:
        record = {
            "name": recipe.name,
            "architecture": recipe.architecture,
            "summary": recipe.summary,
            "source": {"report": recipe.source.report, "section": recipe.source.section},
            "reported": {"test_accuracy": recipe.reported.test_accuracy, "params": recipe.reported.params},
            "training": {
                "optimizer": recipe.training.optimizer,
                "learning_rate": recipe.training.learning_rate,
                "loss": recipe.training.loss,
                "batch_size": recipe.training.batch_size,
                "epochs": recipe.training.epochs,
            },
            "callbacks": [{"kind": c.kind, **dict(c.options)} for c in recipe.callbacks],
            "augmentation": recipe.augmentation,
            "base": recipe.base,
            "notes": recipe.notes,
        }
        if with_params:
            record["params"] = counted[recipe.architecture]
            record["params_match"] = recipe.reported.params is None or recipe.reported.params == record["params"]
        records.append(record)
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{len(records)} recipes in {context.config_path}")
    for column in ("recipe", "architecture", "report § section", "reported acc", "reported params"):
        table.add_column(column, overflow="fold", no_wrap=column in ("recipe", "architecture"))
    if with_params:
        table.add_column("built params", justify="right")
    table.add_column("what changed", overflow="fold")
    for record in records:
        accuracy = record["reported"]["test_accuracy"]
        params = record["reported"]["params"]
        cells = [
            record["name"],
            record["architecture"],
            _source_cell(record["source"]),
            "–" if accuracy is None else f"{100 * accuracy:.2f}%",
            "–" if params is None else f"{params:,}",
        ]
        if with_params:
            mark = "" if record["params_match"] else " ✗"
            cells.append(f"{record['params']:,}{mark}")
        cells.append(record["summary"])
        table.add_row(*cells)
    _rich_console().print(table)


def _known_runs(context: Context, profile: str) -> list:
    """Finished runs for expected epochs: the store's, if there is one (never created here), and
    the records under results/runs."""
    from harness.cost.estimate import finished_runs

    try:
        store = context.tracker(create=False)
    except HarnessError:
        store = None
    return finished_runs(context.config, store, profile)


def _print_costs(
    context: Context, recipes, *, profile: str, measure: bool, as_json: bool, by_cost: bool, calibrate: bool = False
) -> None:
    from rich.table import Table

    from harness.cost.estimate import estimate
    from harness.cost.gpu_model import load_reference
    from harness.cost.run_cost import human_duration

    context.config.profile(profile)
    console = _rich_console(stderr=True)
    runs = _known_runs(context, profile)
    with console.status("Counting FLOPs" + (" and probing this machine" if measure else "") + " …") as status:
        doing = ["Counting FLOPs …"]

        def started(message: str) -> None:
            doing[0] = message
            status.update(message)

        def done(name: str, measured: bool) -> None:
            status.update(f"{doing[0].removesuffix(' …')}: {'probed' if measured else 'counted'} {name} …")

        estimates = estimate(
            context.config, recipes, profile, measure=measure, on_done=done, runs=runs, on_status=started
        )
    if calibrate:
        _print_calibration(context, estimates, runs, as_json=as_json)
        return
    if by_cost:
        estimates = sorted(estimates, key=lambda e: e.seconds, reverse=True)
    reference = load_reference()
    gpu_words = reference.words if reference else "no reference GPU (results/gpu/h200-step-model.json missing)"

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    if as_json:
        records = [
            {
                **e.cost.to_dict(),
                "expected_epochs": round(e.epochs, 2),
                "epochs_from_runs": e.epochs_from,
                "seconds_here": rounded(e.seconds),
                "seconds_here_at_most": rounded(e.max_seconds),
                "basis": e.basis,
                "gpu_reference": gpu_words,
                "gpu_reference_seconds": rounded(e.gpu_seconds),
                "gpu_reference_seconds_at_most": rounded(None if e.gpu is None else e.gpu.total(e.cost.epochs)),
                "gpu_basis": e.gpu_basis,
                "gpu_share": round(e.gpu_share, 3),
            }
            for e in estimates
        ]
        click.echo(json.dumps(records, indent=2))
        return
    table = Table(
        title=f"One run of each recipe, profile '{profile}': expected epochs from finished runs, else at most the "
        "profile's (early stopping can end a run sooner)",
        caption=f"here: this machine, from a probe of the recipe (probe) or its FLOPs at the probed rate (flops); "
        f"GPU: {gpu_words}, float32, its step measured there (measured) or fitted from FLOPs and activations "
        "(fit); TensorFlow on a GPU is unmeasured. PFLOP: at most. `bench list --cost --measure` probes every "
        "recipe.",
        caption_justify="left",
    )
    for column in ("recipe", "epochs", "batch", "GFLOP/img", "PFLOP", "here", "basis", "GPU", "GPU basis"):
        table.add_column(
            column, justify="left" if column in ("recipe", "basis", "GPU basis") else "right", no_wrap=True
        )
    for e in estimates:
        c = e.cost
        table.add_row(
            c.recipe,
            e.epochs_words,
            str(c.batch_size),
            f"{c.forward_gflops:.3f}",
            f"{c.total_pflop:.3f}",
            human_duration(e.seconds),
            e.basis,
            "–" if e.gpu_seconds is None else human_duration(e.gpu_seconds),
            e.gpu_basis,
        )
    _rich_console().print(table)
    total = sum(e.seconds for e in estimates)
    at_most = sum(e.max_seconds for e in estimates)
    expected = sum(1 for e in estimates if e.epochs_from)
    gpu = sum(e.gpu_seconds or 0.0 for e in estimates)
    console.print(
        f"{len(estimates)} recipes, one seed each: at most {sum(e.cost.total_pflop for e in estimates):.2f} PFLOP; "
        f"about {human_duration(total)} here (at most {human_duration(at_most)}), "
        + ("" if reference is None else f"{human_duration(gpu)} on {gpu_words}; ")
        + f"epochs expected from finished runs for {expected} recipe(s), at most the profile's for the rest"
    )


def _print_calibration(context: Context, estimates, runs: list, *, as_json: bool) -> None:
    """``bench list --cost --calibrate``: estimate ÷ measured for every recipe with finished runs."""
    from rich.table import Table

    from harness.cost.estimate import calibrate
    from harness.cost.probe import machine_words

    rows = calibrate(context.config, estimates, runs, device="gpu" if _gpus_here() else "cpu")
    if as_json:
        click.echo(json.dumps([{**dataclasses.asdict(row), "ratio": round(row.ratio, 3)} for row in rows], indent=2))
        return
    console = _rich_console()
    if not rows:
        console.print("No finished run of these recipes at this profile on this device class to calibrate against.")
        return
    here = machine_words()["hardware"]
    table = Table(
        title=f"Estimate here ({here}) ÷ measured, per recipe: training epochs with their validation",
        caption="measured: the runs' mean time/train_seconds (fit) at the epochs they trained; estimated: this "
        "machine's epoch estimate × those epochs. wall: MLflow start to end of runs that record both, against the "
        "whole estimated run. Runs on other hardware than this machine are marked *.",
        caption_justify="left",
    )
    for column in ("recipe", "runs", "epochs", "measured", "estimated", "est ÷ measured", "wall est ÷ measured"):
        table.add_column(column, justify="left" if column == "recipe" else "right", no_wrap=True)
    for row in rows:
        wall = (
            "–"
            if row.measured_wall_seconds is None
            else f"{row.estimated_wall_seconds / row.measured_wall_seconds:.2f}"
        )
        mark = "" if row.hardware == here else " *"
        table.add_row(
            row.recipe + mark,
            str(row.runs),
            f"{row.epochs:.1f}",
            f"{row.measured_seconds:,.0f} s",
            f"{row.estimated_seconds:,.0f} s",
            f"{row.ratio:.2f}",
            wall,
        )
    console.print(table)
    ratios = [row.ratio for row in rows]
    other = sorted({row.hardware for row in rows if row.hardware != here})
    console.print(
        f"estimate ÷ measured: {min(ratios):.2f}–{max(ratios):.2f} over {len(rows)} recipe(s)"
        + (f"; * trained on {', '.join(other)}" if other else "")
    )


def _gpus_here() -> bool:
    from harness.run.devices import visible_gpus

    return bool(visible_gpus())


@main.command("data")
@pass_context
def data_command(context: Context) -> None:
    """Show where CIFAR-10 comes from, its shapes, class counts, split and fingerprint."""
    import numpy as np

    from harness.run.data import CLASS_NAMES, load_cifar10, split_train_validation

    data = load_cifar10(context.dataset)
    split = context.config.data
    train, validation = split_train_validation(
        data.y_train, split.validation_size, seed=split.split_seed, stratified=split.stratified
    )
    from rich.table import Table

    console = _rich_console()
    console.print(f"source:      {data.source}")
    console.print(f"fingerprint: {data.fingerprint}")
    console.print(f"x_train {data.x_train.shape} {data.x_train.dtype}   x_test {data.x_test.shape} {data.x_test.dtype}")
    console.print(
        f"split:       {len(train):,} train / {len(validation):,} validation "
        f"({'stratified' if split.stratified else 'random'}, split seed {split.split_seed}) / {len(data.y_test):,} test"
    )
    table = Table(title="images per class")
    for column in ("class", "train", "validation", "test"):
        table.add_column(column, justify="right")
    counts = [
        np.bincount(y, minlength=len(CLASS_NAMES)) for y in (data.y_train[train], data.y_train[validation], data.y_test)
    ]
    for index, name in enumerate(CLASS_NAMES):
        table.add_row(f"{index} {name}", *(f"{c[index]:,}" for c in counts))
    console.print(table)


@main.command("cache")
@click.option(
    "--clear",
    is_flag=True,
    help="Delete the files listed (all of them, or those --match selects); runs recompute them.",
)
@click.option(
    "--match", metavar="GLOB", help="Only feature files whose backbone key matches this glob, e.g. 'r003_tl_basic*'."
)
def cache_command(clear: bool, match: str | None) -> None:
    """List, or clear, the on-disk cache of frozen-backbone features (BENCH_CACHE)."""
    import datetime
    from collections import defaultdict

    from rich.table import Table

    from harness.run.features import cache_entries, cache_root, clear_cache

    console = _rich_console()
    root = cache_root()
    if clear:
        removed = clear_cache(match)
        size = sum(e.size for e in removed)
        console.print(f"deleted {len(removed)} file(s), {size / 1e6:,.1f} MB, from {root}")
        return
    entries = cache_entries(match)
    if not entries:
        console.print(f"no cached features{' matching ' + repr(match) if match else ''} in {root}")
        return
    groups: dict[str, list] = defaultdict(list)
    for entry in entries:
        groups[entry.feature_key].append(entry)
    table = Table(title=f"cached features in {root}")
    for column, justify in (
        ("backbone key", "left"),
        ("files", "right"),
        ("arrays (images × features)", "left"),
        ("MB", "right"),
        ("last written", "left"),
    ):
        table.add_column(column, justify=justify)
    for key, group in groups.items():
        shapes = ", ".join(
            "interrupted write" if e.shape is None else " × ".join(f"{n:,}" for n in e.shape) for e in group
        )
        newest = datetime.datetime.fromtimestamp(max(e.modified for e in group)).strftime("%Y-%m-%d %H:%M")
        table.add_row(key, str(len(group)), shapes, f"{sum(e.size for e in group) / 1e6:,.1f}", newest)
    console.print(table)
    total = sum(e.size for e in entries)
    console.print(f"{len(entries)} file(s), {total / 1e6:,.1f} MB in all; `bench cache --clear` deletes them")


def _sweep(
    context: Context,
    recipes,
    settings,
    *,
    dry_run: bool = False,
    max_seeds: int | None = None,
    assume_yes: bool = False,
) -> None:
    """Run a sweep (``harness.sweep.sweep.run_sweep``, or ``harness.sweep.adaptive.run_adaptive`` rounds up to
    ``max_seeds``), print its summary and leaderboard, and exit non-zero if any run failed (1),
    a sweep expected to take over a day was not confirmed (1 declined, 2 no terminal and no --yes),
    recipes were skipped for missing weights (3), the time budget ran out first (4) or it was
    interrupted (130)."""
    import os
    import signal

    from harness.cli.progress import RichProgress
    from harness.cost.run_cost import human_duration
    from harness.store.tracking import redacted, resolve_tracking_uri
    from harness.sweep.sweep import NotConfirmed, run_sweep

    def terminate(signum, frame):
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    def hang_up(signum, frame):
        # The terminal is gone (closed, ssh dropped): writing to it would fail, so what is left
        # to say goes nowhere, and the sweep stops as on SIGTERM.
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            if os.isatty(fd):
                os.dup2(devnull, fd)
        os.close(devnull)
        terminate(signum, frame)

    signal.signal(signal.SIGTERM, terminate)  # a scheduler's SIGTERM stops the sweep like Ctrl-C
    if signal.getsignal(signal.SIGHUP) == signal.SIG_DFL:  # nohup's "ignore" is kept: it asked to go on
        signal.signal(signal.SIGHUP, hang_up)
    if not recipes:
        raise click.UsageError("no recipe matches the selection")
    from harness.store.tracking import ExperimentMissing, StoreMissing

    context.config.profile(settings.profile)  # a typo fails here, before any store is opened
    if settings.executor == "ray":  # a cluster elsewhere cannot reach a local store: said before one is opened
        from harness.sweep.executors import refuse_local_store_on_a_cluster

        refuse_local_store_on_a_cluster(resolve_tracking_uri(context.tracking_uri), settings.address)
    console = _rich_console(stderr=True)
    rounds = None
    progress = RichProgress(console, assume_yes=assume_yes)
    store = redacted(resolve_tracking_uri(context.tracking_uri))  # as it may be printed
    try:
        with progress:
            progress.status(f"Opening the MLflow store {store} …")  # importing MLflow takes seconds
            try:  # a dry run only reads: no store or experiment yet is one with nothing finished
                tracker = context.tracker(create=not dry_run)
            except (StoreMissing, ExperimentMissing):
                if not dry_run:
                    raise
                tracker = None
            finally:
                progress.status(None)
            if max_seeds is None or dry_run:
                report = run_sweep(context.config, tracker, recipes, settings, progress, dry_run=dry_run)
            else:
                from harness.sweep.adaptive import run_adaptive

                adaptive = run_adaptive(
                    context.config, tracker, recipes, settings, max_seeds=max_seeds, progress=progress
                )
                report, rounds = adaptive.sweep, len(adaptive.rounds)
    except WeightsMissing as error:  # every selected recipe lacks its weights: skipped, as documented
        if context.debug:
            raise
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_SKIPPED)
    except NotConfirmed as error:
        if progress.interactive:
            click.echo("Aborted: nothing was trained.", err=True)
            sys.exit(1)
        click.echo(
            f"Error: not started: this sweep is estimated at {human_duration(error.seconds)} on this machine and "
            f"there is no terminal to confirm it on; to start it anyway: {' '.join(_command_line())} --yes",
            err=True,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        # Raised before the sweep had a report to return (while planning, or a further interrupt
        # while it was stopping).
        if not progress.runs_started:
            click.echo(
                "Interrupted before any run started: nothing was trained (what was measured of this machine "
                "is kept); rerun the same command to start.",
                err=True,
            )
        else:  # what finished is in the store; never claim "nothing"
            click.echo(
                f"Interrupted: every run that finished is kept in {store}; rerun the same command to train the rest.",
                err=True,
            )
        sys.exit(130)
    except TrackingError as error:  # the store failed outside a run (repair, planning, between rounds)
        if context.debug:
            raise
        console.print(_stopped_line(str(error), kept_locally=0))
        sys.exit(1)
    if dry_run:
        planned = report.by_status("PLANNED")
        seeds: dict[str, list[int]] = {}
        for outcome in planned:
            seeds.setdefault(outcome.spec.recipe.name, []).append(outcome.spec.seed)
        for name, chosen in seeds.items():
            console.print(f"  would train {name} seed{'s' if len(chosen) > 1 else ''} {', '.join(map(str, chosen))}")
        console.print(f"Dry run: {len(planned)} run(s) would train; nothing was trained.")
        return
    failed = report.by_status("FAILED")
    killed = report.by_status("KILLED")
    paused, left = report.by_status("PAUSED"), report.by_status("LEFT")
    interrupted = report.interrupted or any(o.interrupted for o in report.outcomes)
    skipped = report.by_status("SKIPPED")
    elsewhere = [o for o in skipped if o.reason.startswith("running in another sweep")]
    console.print(
        f"{len(report.by_status('FINISHED'))} trained, {len(skipped) - len(elsewhere)} already finished "
        f"(skipped), {len(failed)} failed"
        + (f", {len(elsewhere)} training in another sweep" if elsewhere else "")
        + (f", {len(killed)} interrupted" if killed else "")
        + (f", {len(paused)} paused and {len(left)} not started at the time budget" if paused or left else "")
        + (f", in {rounds} adaptive round(s) (plan logged as adaptive_plan.json)" if rounds else "")
        + f"; tracking store: {tracker.shown_uri}"
    )
    estimated = progress.eta.estimate_note()
    if estimated:
        console.print(estimated)
    store_error = report.store_error
    if not store_error:
        try:
            _print_leaderboard(context, tracker, settings, recipes={r.name for r in recipes})
            if rounds:
                _print_steps(context, tracker, settings, recipes={r.name for r in recipes})
        except TrackingError as error:  # the store failed after the last run: what trained is kept
            store_error = str(error)
    for outcome in failed:
        console.print(f"[red]FAILED[/red] {outcome.spec.label}: {redacted(outcome.reason)}")
    if store_error:
        kept = sum(1 for o in report.outcomes if o.kept_locally)
        console.print(_stopped_line(store_error, kept_locally=kept))
    if report.unavailable:
        console.print(
            f"[yellow]NOT TRAINED[/yellow] (pretrained weights missing; pass --weights-dir DIR): "
            f"{', '.join(report.unavailable)}"
        )
    if report.budget_spent:
        _print_budget_left(console, report, settings)
    if interrupted:
        console.print("Interrupted: rerun the same command to train the unfinished runs.")
        sys.exit(130)
    if failed or store_error:
        sys.exit(1)
    if report.budget_spent:
        sys.exit(EXIT_BUDGET)
    if report.unavailable:
        sys.exit(EXIT_SKIPPED)


def _print_budget_left(console, report, settings) -> None:
    """What the time budget left undone, and the command that continues it."""
    import shlex

    from harness.cost.run_cost import human_duration

    finished = len(report.by_status("FINISHED"))
    paused, left = report.by_status("PAUSED"), report.by_status("LEFT")
    budget = human_duration(settings.time_budget) if settings.time_budget else "the time budget"
    console.print(f"Time budget ({budget}) reached: {finished} run(s) finished in it.")
    for outcome in paused:
        console.print(
            f"  paused {outcome.spec.label} after epoch {outcome.epochs_done} of {outcome.epochs_planned} "
            "(checkpoint kept)"
            if outcome.epochs_done
            else f"  stopped {outcome.spec.label} in its first epoch (no checkpoint yet)"
        )
    if left:
        names = ", ".join(o.spec.label for o in left[:8]) + (f" and {len(left) - 8} more" if len(left) > 8 else "")
        console.print(f"  not started: {names}")
    if report.seconds_left:
        console.print(f"  about {human_duration(sum(report.seconds_left.values()))} of training left (estimated)")
    from harness.store.tracking import redacted  # a --tracking-uri's credentials are never printed

    console.print(
        f"Continue with: {redacted(shlex.join(['bench', *_arguments()]))}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


def _view(context: Context, runs, rows, *, profile: str, variant, names=None, against: str = "previous"):
    """``rows`` (one profile's) with their verdicts and, for a budget profile, its line with the
    agreement measured against `full`'s runs among ``runs`` (store and records)."""
    from harness.results.records import board_view

    return board_view(context.config, runs, rows, profile=profile, variant=variant, names=names, against=against)


def _sweep_sources(context: Context, tracker):
    """After a sweep: the store it wrote, and the records under results/ (`full`'s, to compare with)."""
    from harness.results import records as results

    folder = results.results_folder(context.config.path)
    return results.RunSources(tracker, results.read_records(folder), folder=folder)


def _stopped_line(why: str, *, kept_locally: int) -> str:
    """The one line a sweep stopped by its store ends with: why (without credentials), and what
    the rerun will do."""
    from harness.store.tracking import redacted

    upload = (
        f"it uploads the results of the {kept_locally} run(s) kept locally and trains the rest"
        if kept_locally
        else "it trains what is missing"
    )
    return (
        f"[red]STOPPED[/red] {redacted(why)}; no new run was started. Rerun the same command once the store works: "
        f"{upload}."
    )


def _print_leaderboard(context: Context, tracker, settings, *, recipes: set[str]) -> None:
    from harness.identity import current_hashes
    from harness.results import leaderboard
    from harness.run.devices import visible_gpus
    from harness.sweep.plan import variant_here

    variant = variant_here(settings, visible_gpus() if settings.executor == "local" else [])
    hashes = current_hashes(context.config, settings.profile, variant)
    rows = leaderboard.collect_rows(tracker, profile=settings.profile, current_hashes=hashes)
    rows = leaderboard.only_recipes(rows, recipes)
    shown = _view(
        context, _sweep_sources(context, tracker), rows, profile=settings.profile, variant=variant, names=recipes
    )
    title = f"Leaderboard, profile '{settings.profile}'"
    _rich_console().print(leaderboard.to_rich_table(rows, title=title, budget=shown.budget))


def _print_steps(context: Context, tracker, settings, *, recipes: set[str]) -> None:
    """The step table of the recipes just trained whose previous step was trained too."""
    from harness.identity import current_hashes
    from harness.results import leaderboard, steps

    hashes = current_hashes(context.config, settings.profile, settings.variant)
    rows = leaderboard.only_recipes(
        leaderboard.collect_rows(tracker, profile=settings.profile, current_hashes=hashes), recipes
    )
    shown = _view(
        context,
        _sweep_sources(context, tracker),
        rows,
        profile=settings.profile,
        variant=settings.variant,
        names=recipes,
    )
    deltas = [d for d in shown.deltas if d.base in recipes]
    console = _rich_console()
    for table in steps.to_rich_tables(deltas, profile=settings.profile, budget=shown.budget):
        console.print(table)


class SeedCount(click.ParamType):
    """--seeds: a number of seeds (1 … 1000) or 'auto'."""

    name = "N|auto"

    def convert(self, value: int | str, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or value == "auto":
            number = value
        elif str(value).strip().lower() == "auto":
            return "auto"
        else:
            try:
                number = int(value)
            except ValueError:
                self.fail(f"{value!r} is neither a number of seeds nor 'auto'", param, ctx)
        return number if number == "auto" else click.IntRange(1, 1000).convert(number, param, ctx)


class RunsPerGpu(click.ParamType):
    """--jobs-per-gpu: a number of runs (1 … 16) or 'auto'."""

    name = "N|auto"

    def convert(self, value: int | str, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number of runs nor 'auto'", param, ctx)
        return click.IntRange(1, 16).convert(number, param, ctx)


SEEDS_HELP = (
    "Seeds per recipe (seeds 0 … N-1), or 'auto': 3 each, then more, round by round, only for recipes "
    "whose step Δ (vs its base) or comparison with the leader is still not resolved (see --max-seeds)."
)
MAX_SEEDS_HELP = "With --seeds auto: the most seeds any recipe gets [default: 10]."


def _seed_plan(seeds: int | str, max_seeds: int | None) -> tuple[int, int | None]:
    """(first round's seeds, adaptive limit or None) from --seeds / --max-seeds."""
    from harness.sweep.adaptive import DEFAULT_MAX_SEEDS, START_SEEDS

    if seeds != "auto":
        if max_seeds is not None:
            raise click.UsageError(f"--max-seeds {max_seeds} needs --seeds auto (got --seeds {seeds})")
        return int(seeds), None
    return START_SEEDS, DEFAULT_MAX_SEEDS if max_seeds is None else max_seeds


PROFILE_HELP = "Budget to train under (see [profiles] in the benchmarks file: full, quick, cpu, tenth, smoke, micro)."


def _settings(context: Context, **options) -> SweepSettings:
    """The SweepSettings of a `run` / `all` command line."""
    import time

    from harness.identity import Variant

    variant = Variant(
        precision=options.pop("precision"),
        random_weights=options.pop("random_weights"),
        deterministic=options.pop("deterministic"),
    )
    budget = options.get("time_budget")
    deadline = None if budget is None else time.time() + budget  # counted from the command's start
    return SweepSettings(
        variant=variant, data_path=context.dataset, weights_dir=context.weights_dir, deadline=deadline, **options
    )


class Duration(click.ParamType):
    """--time-budget: a duration in hours, minutes and seconds ("2h30m", "45m", "90s", "1.5h")."""

    name = "DURATION"
    UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}

    def convert(self, value, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import re

        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower().replace(" ", "")
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", text)
        if not text or parts is None:
            self.fail(
                f"{value!r} is not a duration: write hours, minutes and seconds, e.g. 2h30m, 45m, 90s", param, ctx
            )
        seconds = sum(float(n) * unit for n, unit in zip(parts.groups(), self.UNITS.values(), strict=True) if n)
        if seconds <= 0:
            self.fail(f"{value!r}: a time budget must be longer than zero", param, ctx)
        return seconds


TIME_BUDGET_HELP = (
    "Train for at most this long from now (e.g. 2h30m, 45m, 90s): a run starts only while its first epoch "
    "fits (estimated); at the deadline the runs in flight stop, each keeping its last checkpoint; the same "
    "command continues them. Prints what finished, what is left and the command to continue; exit code 4."
)
ORDER_HELP = (
    "The order runs start in: cheapest or longest first (by estimated time left of each run), or the file's "
    "order. auto = cheapest first under --time-budget (the most runs finish), longest first with more than one "
    "job at once (no long run left alone at the end), else file order."
)


def execution_options(command):
    """--jobs / --jobs-per-gpu / --precision / --jit-compile / --deterministic / --executor / --address /
    --gpus-per-run / --system-metrics / --log-model / --dry-run / --yes / --time-budget / --order, shared by
    `run` and `all`."""
    command = click.option(
        "--log-model",
        is_flag=True,
        help="Also log each trained Keras model to MLflow (the UI's Models column); off by default: "
        "models are large (a VGG16 head on features is small, a fine-tuned backbone is not).",
    )(command)
    command = click.option(
        "--system-metrics",
        is_flag=True,
        help="Log CPU, memory, disk, network (and GPU) use of each run every 10 s as system/* metrics "
        "(MLflow's System metrics tab; needs psutil).",
    )(command)
    command = click.option(
        "--yes",
        "-y",
        is_flag=True,
        help="Start a sweep estimated at over a day on this machine (or its --time-budget, if shorter) without "
        "asking (asked on a terminal; without a terminal such a sweep needs --yes).",
    )(command)
    command = click.option(
        "--order",
        type=click.Choice(["auto", "cheapest", "longest", "file"]),
        default="auto",
        show_default=True,
        help=ORDER_HELP,
    )(command)
    command = click.option("--time-budget", type=Duration(), default=None, help=TIME_BUDGET_HELP)(command)
    command = click.option(
        "--dry-run",
        is_flag=True,
        help="Say what the sweep would train and what it would cost (runs, images, PFLOP, hours here and on a "
        "reference GPU), then stop without training.",
    )(command)
    command = click.option(
        "--jobs",
        type=click.IntRange(1, 64),
        default=None,
        help="How many runs train at once, each in its own process [default: one per GPU slot "
        "(GPUs × --jobs-per-gpu), else 1]. On a CPU each run then gets cores / N threads.",
    )(command)
    command = click.option(
        "--no-jobs-cap",
        "jobs_cap",
        flag_value=False,
        default=True,
        help="Run as many CPU jobs as --jobs says even beyond this machine's cores or free memory "
        "(by default --jobs is capped there, with a note).",
    )(command)
    command = click.option(
        "--jobs-per-gpu",
        type=RunsPerGpu(),
        default="auto",
        show_default=True,
        help="Runs sharing one GPU at once, or 'auto': by the share of a GPU each run takes, from the H200 "
        "measurements (a small CNN's step is mostly launch overhead: 4 r004-step1 runs gave 2.5x the throughput "
        "of one; a 224x224 fine-tune fills a GPU alone; at most 4 per GPU). Each run is pinned to one GPU with "
        "CUDA_VISIBLE_DEVICES and takes its memory as it needs it.",
    )(command)
    command = click.option(
        "--jit-compile",
        type=click.Choice(["auto", "on", "off"]),
        default="auto",
        show_default=True,
        help="XLA compilation of the train step: Keras' rule (auto: on with a GPU, off on a CPU), or force it "
        "on/off; augmentation is built to compile under XLA too. Logged with each run.",
    )(command)
    command = click.option(
        "--deterministic",
        is_flag=True,
        help="Deterministic GPU kernels (same seed, same numbers on the same GPU; slower, no XLA under auto). "
        "Its own identity: never averaged with the default runs.",
    )(command)
    command = click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default="float32",
        show_default=True,
        help="float32 (true float32: TF32 off on GPUs that have it), tf32 (float32 with TF32 convolutions and "
        "matmuls), or a Keras mixed policy (mixed_* for tensor-core GPUs / bf16 CPUs). Each is its own identity: "
        "never averaged with the others. Logged with each run.",
    )(command)
    command = click.option(
        "--gpus-per-run",
        type=click.FloatRange(0, 8),
        default=0.0,
        show_default=True,
        help="With --executor ray: the GPU share each run asks for (0.25 = four small CNNs per GPU).",
    )(command)
    command = click.option(
        "--address",
        help="With --executor ray: the cluster to join, e.g. ray://head:10001 [default: start a local one].",
    )(command)
    return click.option(
        "--executor",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="Where runs train: worker processes on this machine, or Ray tasks on a (local or remote) Ray cluster.",
    )(command)


RANDOM_WEIGHTS_HELP = (
    "For tests of the plumbing only: build transfer backbones WITHOUT their ImageNet weights. "
    "Such runs get their own identity, are tagged, and never join a real recipe's statistics."
)


@main.command("run")
@click.argument("names", nargs=-1, required=True)
@click.option("--seeds", type=SeedCount(), default=3, show_default=True, help=SEEDS_HELP)
@click.option("--max-seeds", type=click.IntRange(3, 1000), default=None, help=MAX_SEEDS_HELP)
@click.option("--profile", default="full", show_default=True, help=PROFILE_HELP)
@click.option("--random-weights", is_flag=True, help=RANDOM_WEIGHTS_HELP)
@execution_options
@pass_context
def run_command(context: Context, names: tuple[str, ...], **options) -> None:
    """Train the named recipes, each seed in its own process; finished runs are skipped."""
    recipes = [context.config.recipe(name) for name in dict.fromkeys(names)]
    dry_run, yes = options.pop("dry_run"), options.pop("yes")
    seeds, max_seeds = _seed_plan(options.pop("seeds"), options.pop("max_seeds"))
    settings = _settings(context, seeds=seeds, **options)
    _sweep(context, recipes, settings, dry_run=dry_run, max_seeds=max_seeds, assume_yes=yes)


@main.command("all")
@click.option("--seeds", type=SeedCount(), default=3, show_default=True, help=SEEDS_HELP)
@click.option("--max-seeds", type=click.IntRange(3, 1000), default=None, help=MAX_SEEDS_HELP)
@click.option("--profile", default="full", show_default=True, help=PROFILE_HELP)
@click.option("--only", metavar="GLOB", help="Only recipes whose name matches this glob, e.g. 'r004-*'.")
@click.option("--suite", help="Only recipes of this suite (see [suites] in the benchmarks file).")
@click.option("--random-weights", is_flag=True, help=RANDOM_WEIGHTS_HELP)
@execution_options
@pass_context
def all_command(context: Context, only: str | None, suite: str | None, **options) -> None:
    """Train every recipe (or a suite / glob of them) with N seeds, then show the leaderboard."""
    recipes = context.config.select(suite=suite, only=only)
    dry_run, yes = options.pop("dry_run"), options.pop("yes")
    seeds, max_seeds = _seed_plan(options.pop("seeds"), options.pop("max_seeds"))
    settings = _settings(context, seeds=seeds, **options)
    _sweep(context, recipes, settings, dry_run=dry_run, max_seeds=max_seeds, assume_yes=yes)


def readme_options(block: str, what: str, kept: str):
    """--update-readme [FILE] (the README block ``<block>:PROFILE``) and --min-seeds, shared by
    `leaderboard` and `steps`."""

    def decorate(command):
        command = click.option(
            "--min-seeds",
            type=click.IntRange(1, 1000),
            default=1,
            show_default=True,
            help=f"Only {kept} (a sweep still running has recipes with fewer).",
        )(command)
        return click.option(
            "--update-readme",
            "readme",
            is_flag=False,
            flag_value="README.md",
            default=None,
            type=click.Path(dir_okay=False, path_type=Path),
            help=f"Rewrite the block between <!-- {block}:PROFILE:start --> and <!-- {block}:PROFILE:end --> in "
            f"README.md (or the file given) with {what} as markdown.",
        )(command)

    return decorate


def _check_outputs(output: Path | None, readme: Path | None, **folders: Path | None) -> None:
    """Every path a command will write, checked before it reads the store: one line naming the
    option and the path, not a traceback after the work."""
    if output is not None:
        outputs.check_file_target(output, "--output")
    if readme is not None and not readme.is_file():
        raise outputs.OutputError(f"--update-readme {readme}: no such file (it must hold the block's markers)")
    for option, folder in folders.items():
        if folder is not None:
            outputs.check_folder_target(folder, f"--{option}")


def _readme_command(name: str, profile: str, suite: str | None, min_seeds: int, source: str = "both") -> str:
    """The command that writes a README block, as its header quotes it (to rerun it)."""
    return (
        f"bench {name} --profile {profile}"
        + (f" --suite {suite}" if suite else "")
        + (f" --min-seeds {min_seeds}" if min_seeds > 1 else "")
        + (f" --source {source}" if source != "both" else "")
        + " --update-readme"
    )


def source_options(command):
    """--source store|results|both and --results DIR, shared by `leaderboard` and `steps`."""
    command = click.option(
        "--results",
        "results_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The folder of published run records (their files are under its runs/) [default: results/ beside "
        "the benchmarks file].",
    )(command)
    return click.option(
        "--source",
        type=click.Choice(["both", "store", "results"]),
        default="both",
        show_default=True,
        help="Where runs come from: the MLflow store, the run records under results/runs, or both (a run in "
        "both counts once; with no store here, the records alone).",
    )(command)


def _run_sources(context: Context, source: str, results_dir: Path | None, *, create_store: bool = False):
    """The runs a board reads (``harness.results.records.RunSources``). With ``both``, a store that does
    not exist is no store (never created by a reading command); with neither a store nor a
    record, the store's error says so."""
    from harness.results import records as results
    from harness.store.tracking import ExperimentMissing, StoreMissing

    folder = results.results_folder(context.config.path, results_dir)
    store, missing = None, None
    if source != "results":
        try:
            store = context.tracker(create=create_store)
        except (StoreMissing, ExperimentMissing) as error:
            if source == "store":
                raise
            missing = error
    records = results.read_records(folder) if source != "store" else []
    if missing is not None and not records:
        raise HarnessError(f"{missing}; and no run records under {results.shown(results.records_root(folder))}")
    folder = None if source == "store" else folder
    return results.RunSources(store, records, folder=folder, base=context.config.path.resolve().parent)


@main.command("leaderboard")
@click.option("--profile", default=None, help="Only this profile [default: every profile, each ranked on its own].")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "markdown", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout.")
@readme_options("leaderboard", "this leaderboard", "recipes with at least this many finished seeds")
@source_options
@click.option(
    "--publish",
    is_flag=True,
    help="Write a record of every store run this leaderboard counts to results/runs/<profile>/<device>/<recipe>/ "
    "(one small JSON file per run: identity, metrics, curves, params, times). A run already there is left as "
    "it is; another run of the same identity is listed and kept, and the command exits 1. Needs --profile.",
)
@click.option("--suite", help="Only recipes of this suite (see [suites] in the benchmarks file).")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="float32",
    show_default=True,
    help="Rank the runs trained with this --precision (each precision is ranked on its own).",
)
@click.option(
    "--random-weights",
    is_flag=True,
    help="Rank the plumbing runs of transfer recipes trained with --random-weights instead of the real ones.",
)
@click.option(
    "--device",
    type=click.Choice(["here", "cpu", "gpu", "any"]),
    default="here",
    show_default=True,
    help="Which hardware class's runs to rank: this machine's (here), cpu, gpu (e.g. a GPU sweep viewed "
    "from a laptop), or any: CPU and GPU runs pooled into one row per recipe (GPU runs are not "
    "bit-identical to CPU runs of the same seed, so a seed trained on both counts twice).",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write leaderboard.{md,csv,json} and the comparison plots (seed spread, accuracy vs "
    "parameters with Pareto front, claimed vs measured) to this folder, and log them to the "
    "profile's 'leaderboard' MLflow run. Needs --profile.",
)
@click.option(
    "--include-stale",
    is_flag=True,
    help="Also rank, apart and marked 'stale', the runs of configurations that are not current: a recipe or "
    "profile edited or removed since they ran (or another precision or device). Not with --update-readme, "
    "--plots or --publish.",
)
@click.option(
    "--wide",
    is_flag=True,
    help="The terminal table with every column (min–max, the Holm interval of the gap to the leader, params, "
    "s/run, img/s, epochs); by default it shows the essential ones in 100 columns. Files always hold all.",
)
@pass_context
def leaderboard_command(
    context: Context,
    profile: str | None,
    output_format: str,
    output: Path | None,
    readme: Path | None,
    suite: str | None,
    precision: str,
    random_weights: bool,
    device: str,
    plots_dir: Path | None,
    min_seeds: int,
    source: str,
    results_dir: Path | None,
    publish: bool,
    include_stale: bool,
    wide: bool,
) -> None:
    """Rank recipes by mean test accuracy over seeds, read back from MLflow and results/runs.

    Rows marked ≈ are not resolved from the leader: Welch's t-test p, Holm-adjusted across one
    family (every comparison of the profile's recipes shown, each with the leader and each step
    with the step it was built from, a pair counted once), is >= 0.05; the interval beside it is
    Welch's at the level Holm tested it at. A budget profile's table says so in its first line,
    with its measured agreement with `full`, and checks no claim. Only runs of each recipe's
    current configuration count, with or without --profile.
    """
    from harness.identity import Variant, current_hashes
    from harness.results import leaderboard
    from harness.run.devices import visible_gpus
    from harness.store.schema import TAG_PROFILE
    from harness.sweep.plan import variant_here

    if (readme is not None or plots_dir is not None or publish) and profile is None:
        raise click.UsageError("--update-readme, --plots and --publish need --profile: they show one profile")
    if include_stale and (readme is not None or plots_dir is not None or publish):
        raise click.UsageError(
            "--include-stale is for looking: --update-readme, --plots and --publish show current runs"
        )
    if publish and source == "results":
        raise click.UsageError("--publish writes records of store runs: it needs --source store or both")
    if profile is not None and not include_stale:
        context.config.profile(profile)  # a typo is named, with the closest profiles (a removed one is all stale)
    _check_outputs(output, readme, plots=plots_dir, results=results_dir if publish else None)
    runs = _run_sources(context, source, results_dir, create_store=plots_dir is not None and source != "results")
    asked = Variant(precision=precision, random_weights=random_weights)
    if device in ("here", "any"):
        variant = variant_here(SweepSettings(variant=asked), visible_gpus())
    else:
        variant = dataclasses.replace(variant_here(SweepSettings(variant=asked), []), device=device)
    other = dataclasses.replace(variant, device="gpu" if variant.device == "cpu" else "cpu")
    # Each profile filtered by its own current hashes: without --profile, exactly as with it.
    profiles = [profile] if profile is not None else list(context.config.profiles)
    if profile is None and include_stale:  # profiles removed from the config: all their runs are stale
        profiles += sorted({r.data.tags.get(TAG_PROFILE, "") for r in runs.child_runs()} - {"", *profiles})
    rows, pooled = [], {} if device == "any" else None
    for name in profiles:
        pooled_here = current_hashes(context.config, name, other) if device == "any" else None
        rows += leaderboard.collect_rows(
            runs,
            profile=name,
            current_hashes=current_hashes(context.config, name, variant),
            pooled_hashes=pooled_here,
            include_stale=include_stale,
        )
        if pooled is not None:  # by (recipe, profile): what runs.behind() looks up
            pooled.update({(recipe, name): value for recipe, value in pooled_here.items()})
    if len(profiles) > 1:
        runs.child_runs()  # every profile's runs: what runs.behind() / origin() look in
    rows.sort(key=lambda r: (r.profile, r.stale, r.rank))  # as one board of all profiles was sorted
    if suite is not None:
        rows = leaderboard.only_recipes(rows, {r.name for r in context.config.select(suite=suite)})
    if min_seeds > 1:
        rows = leaderboard.at_least(rows, min_seeds)
    if not rows:
        which = f"of profile {profile!r}" if profile else "of any profile"
        hint = "" if include_stale else "; --include-stale shows runs of configurations that are not current"
        click.echo(f"no finished runs {which} in {runs.where} (for this configuration and device{hint})", err=True)
    else:
        click.echo(runs.origin(rows, pooled), err=True)
    views = {}  # each profile's current board with its verdicts and, at a budget profile, its line
    for name in sorted({r.profile for r in rows} & set(context.config.profiles)):
        subset = [r for r in rows if r.profile == name and not r.stale]
        views[name] = _view(context, runs, subset, profile=name, variant=variant, names={r.recipe for r in subset})
        if views[name].budget:  # its stale rows, ranked apart, check no claim either
            leaderboard.without_claim_checks([r for r in rows if r.profile == name and r.stale])
    budget = views[profile].budget if profile in views else None
    if plots_dir is not None:
        _write_plots(runs, rows, plots_dir, profile=profile, budget=budget)
    if publish:
        _publish(context, runs, rows, pooled, results_dir)
    if readme is not None:
        if not rows:
            raise click.ClickException(f"no finished runs for profile {profile!r}: nothing to put in {readme}")
        command = _readme_command("leaderboard", profile, suite, min_seeds, source)
        origin = runs.origin(rows, pooled)
        changed = leaderboard.update_readme(readme, rows, command=command, origin=origin, budget=budget)
        click.echo(f"{readme}: {'updated' if changed else 'already up to date'} ({len(rows)} rows)", err=True)
        return
    if output_format == "table" and output is None:
        boards = sorted({(r.profile, r.stale) for r in rows}) or [(profile or "(none)", False)]
        for name, stale in boards:
            subset = [r for r in rows if (r.profile, r.stale) == (name, stale)]
            title = f"Leaderboard, profile '{name}'" + (
                ": STALE, configurations that are not current (not results of today's recipes)" if stale else ""
            )
            line = views[name].budget if name in views else None
            _rich_console().print(leaderboard.to_rich_table(subset, title=title, budget=line, wide=wide))
        return
    if output_format in ("table", "markdown"):
        parts = []
        for name, stale in sorted({(r.profile, r.stale) for r in rows}):
            line = views[name].budget if name in views else None
            shown = [r for r in rows if (r.profile, r.stale) == (name, stale)]
            head = f"{line}\n\n" if line else ""
            parts.append(head + leaderboard.to_markdown(shown, budget=line))
        text = "\n".join(parts) or leaderboard.to_markdown([])
    else:
        text = {"csv": leaderboard.to_csv, "json": leaderboard.to_json}[output_format](rows)
    if output is None:
        click.echo(text, nl=False)
    else:
        outputs.write_text(output, text)
        click.echo(f"wrote {len(rows)} rows to {output}", err=True)


def _write_plots(runs, rows, plots_dir: Path, *, profile: str, budget: str | None = None) -> None:
    """--plots: the leaderboard's files and plots, logged to the store's leaderboard run where
    there is a store (with --source results there is none: the files only)."""
    from harness.results.publish import publish_leaderboard, write_leaderboard_files

    if runs.store is None:
        files = write_leaderboard_files(rows, plots_dir, profile=profile, budget=budget)
        click.echo(f"wrote {', '.join(f.name for f in files)} to {plots_dir} (no store: not logged)", err=True)
        return
    files = publish_leaderboard(runs.store, rows, plots_dir, profile=profile, budget=budget)
    click.echo(f"wrote {', '.join(f.name for f in files)} to {plots_dir} and logged them to MLflow", err=True)


def _publish(context: Context, runs, rows, pooled, results_dir: Path | None) -> None:
    """--publish: a record of each store run behind ``rows`` under results/runs; exit 1 (after
    writing the rest) where a file holds another run of the same identity."""
    from harness.environment import git_commit
    from harness.results import records as results
    from harness.store.tracking import redacted

    if not rows:
        raise click.ClickException("no finished runs for this profile: nothing to publish")
    if runs.store is None:
        raise click.ClickException(f"{runs.where}: no MLflow store here, so no run to publish")
    folder = results.results_folder(context.config.path, results_dir)
    stored, passed = results.publishable(runs.behind(rows, pooled))
    made_by = redacted(" ".join(_command_line())) + f" (harness {git_commit(Path(__file__).resolve().parent)})"
    report = results.write_records(folder, (results.record_of(runs.store, run, made_by=made_by) for run in stored))
    click.echo(report.line(folder) + (f"; {passed} runs are records already" if passed else ""), err=True)
    for line in report.conflicts:
        click.echo(line, err=True)
    if report.conflicts:
        raise click.ClickException(
            f"{len(report.conflicts)} record(s) kept as they were: another run of the same identity is published"
        )


@main.command("import")
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_context
def import_command(context: Context, folder: Path | None) -> None:
    """Write the run records under FOLDER (results/, results/runs or a part of it) [default: results/
    beside the benchmarks file] into the MLflow store: each record a FINISHED child run (params,
    metrics, per-epoch curves, tags; tagged bench.imported) under its recipe's parent run, so the
    MLflow UI compares them as if they had been trained here. A run whose identity already
    finished in the store is skipped: importing twice adds nothing."""
    from harness.results import records as results

    folder = folder if folder is not None else results.results_folder(context.config.path)
    records = results.read_records(folder)
    if not records:
        raise click.ClickException(f"no run records under {results.shown(results.records_root(folder))}")
    tracker = context.tracker()
    report = results.import_records(tracker, context.config, records, base=context.config.path.resolve().parent)
    rebuilt = sum(run.reconstructed for run in report.imported)
    click.echo(
        f"imported {len(report.imported)} record(s)"
        + (f" ({rebuilt} reconstructed, without curves)" if rebuilt else "")
        + f", {report.skipped} already in the store (skipped); tracking store: {tracker.shown_uri}",
        err=True,
    )


@main.command("doctor")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Check placement for this many runs at once.")
@click.option(
    "--jobs-per-gpu",
    type=RunsPerGpu(),
    default="auto",
    show_default=True,
    help="Runs sharing one GPU at once, or 'auto' (by each run's share of a GPU, at most 4), as a sweep takes it.",
)
@pass_context
def doctor_command(context: Context, jobs: int | None, jobs_per_gpu: int | str) -> None:
    """Check this machine before a long sweep: backend, GPUs (driver and backend), precision, XLA,
    GPU memory policy, run placement, and which dataset a sweep would read. Exits 1 if a check
    finds a problem."""
    from rich.table import Table

    from harness.cli.doctor import run_checks
    from harness.environment import import_keras_quietly

    import_keras_quietly()
    checks = run_checks(jobs=jobs, jobs_per_gpu=jobs_per_gpu, dataset=context.dataset_choice())
    table = Table(title="bench doctor")
    for column in ("check", "status", "found"):
        table.add_column(column, overflow="fold")
    colour = {"ok": "green", "note": "yellow", "problem": "red"}
    for check in checks:
        table.add_row(check.topic, f"[{colour[check.status]}]{check.status}[/]", check.detail)
    _rich_console().print(table)
    if any(check.status == "problem" for check in checks):
        sys.exit(1)


@main.command("steps")
@click.option("--suite", help="Only the steps of this suite (see [suites] in the benchmarks file), e.g. report-004.")
@click.option(
    "--profile",
    default="full",
    show_default=True,
    help="The profile whose runs to compare (runs of different profiles are never pooled).",
)
@click.option(
    "--against",
    type=click.Choice(["previous", "first"]),
    default="previous",
    show_default=True,
    help="Compare each step with the step it was built from (its `previous` in recipes/*.toml, read from "
    "the report), or with the first step of its chain (the cumulative effect).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "markdown", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format: rich tables in the terminal (markdown when written to a file), or markdown, csv, json.",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout.")
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write steps.{md,csv,json} and steps.png (one panel per report: each step's seeds, mean ± 95% CI "
    "and the report's claim) to this folder, and log them to the profile's 'leaderboard' MLflow run.",
)
@readme_options(
    "steps", "this step table", "steps whose recipe and compared step both have at least this many finished seeds"
)
@source_options
@pass_context
def steps_command(
    context: Context,
    suite: str | None,
    profile: str,
    against: str,
    output_format: str,
    output: Path | None,
    plots_dir: Path | None,
    min_seeds: int,
    readme: Path | None,
    source: str,
    results_dir: Path | None,
) -> None:
    """Did each step help? Every step against the step it was built from, one table per report.

    Δ = mean(step) − mean(previous step) with Welch's interval at the level Holm tested it at;
    Welch's p Holm-adjusted across one family (every comparison of the profile's recipes shown:
    each with the leaderboard's leader and each step with the step it is compared with, a pair
    counted once); the report's own claimed Δ; a verdict (helped / hurt where Holm p < 0.05,
    else not resolved at n) and the seeds the same Welch test needs to resolve it. A budget
    profile's tables say so in their first line, with its measured agreement with `full`, and
    show no claim.
    """
    from harness.identity import current_hashes
    from harness.results import leaderboard, steps
    from harness.run.devices import visible_gpus
    from harness.sweep.plan import variant_here

    context.config.profile(profile)  # a typo fails here, before any store is opened
    _check_outputs(output, readme, plots=plots_dir)
    names = {r.name for r in context.config.select(suite=suite)}
    runs = _run_sources(context, source, results_dir, create_store=plots_dir is not None and source != "results")
    variant = variant_here(SweepSettings(), visible_gpus())
    rows = leaderboard.collect_rows(
        runs, profile=profile, current_hashes=current_hashes(context.config, profile, variant)
    )
    if not any(row.n for row in rows):
        raise click.ClickException(f"no finished runs for profile {profile!r}: nothing to compare (pass --profile)")
    if min_seeds > 1:
        rows = leaderboard.at_least(rows, min_seeds)
        names &= {r.recipe for r in rows}
    click.echo(runs.origin(rows), err=True)
    names, idle = steps.reports_with_runs(context.config, rows, names)
    if idle:
        click.echo(f"no finished runs at profile {profile!r} of {', '.join(idle)}: left out", err=True)
    # The family: the recipes shown (as `bench leaderboard` ranks them) and the steps they are compared with.
    compared = {steps.compared_with(context.config, context.config.recipe(n), against) for n in names}
    rows = leaderboard.only_recipes(rows, names | {recipe.name for recipe in compared if recipe is not None})
    shown = _view(context, runs, rows, profile=profile, variant=variant, names=names, against=against)
    deltas = [d for d in shown.deltas if min_seeds == 1 or d.base in names]
    if not deltas:
        raise click.ClickException(f"no recipe built from another in suite {suite!r}: no steps to compare")
    if readme is not None:
        from harness.results.readme import replace_block

        command = _readme_command("steps", profile, suite, min_seeds, source) + (
            f" --against {against}" if against != "previous" else ""
        )
        head = " ".join((leaderboard.header_line(rows), runs.origin(rows), f"Produced by `{command}`."))
        if shown.budget:
            head = f"{shown.budget}\n\n{head}"
        text = f"{head}\n\n{steps.to_markdown(deltas, heading_level=4, budget=shown.budget, short=True)}"
        changed = replace_block(readme, f"steps:{profile}", text)
        click.echo(f"{readme}: {'updated' if changed else 'already up to date'} ({len(deltas)} steps)", err=True)
        return
    if plots_dir is not None:
        from harness.results.publish import publish_steps, write_steps_files

        if runs.store is None:
            files = write_steps_files(
                context.config, rows, deltas, plots_dir, profile=profile, names=names, budget=shown.budget
            )
            click.echo(f"wrote {', '.join(f.name for f in files)} to {plots_dir} (no store: not logged)", err=True)
        else:
            files = publish_steps(
                runs.store, context.config, rows, deltas, plots_dir, profile=profile, names=names, budget=shown.budget
            )
            click.echo(f"wrote {', '.join(f.name for f in files)} to {plots_dir} and logged them to MLflow", err=True)
    if output_format == "table" and output is None:
        console = _rich_console()
        for table in steps.to_rich_tables(deltas, profile=profile, budget=shown.budget):
            console.print(table)
        return
    if output_format in ("table", "markdown"):
        head = f"{shown.budget}\n\n" if shown.budget else ""
        text = head + steps.to_markdown(deltas, budget=shown.budget)
    else:
        text = {"csv": steps.to_csv, "json": steps.to_json}[output_format](deltas)
    if output is None:
        click.echo(text, nl=False)
    else:
        outputs.write_text(output, text)
        click.echo(f"wrote {len(deltas)} steps to {output}", err=True)


@main.command("agreement")
@click.option("--profile", required=True, help="The budget profile to compare with `full` (e.g. cpu, quick, tenth).")
@click.option("--suite", help="Only recipes of this suite (see [suites] in the benchmarks file).")
@click.option(
    "--min-seeds",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Only recipes with at least this many finished seeds at both profiles.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table of the recipes' means and ranks at both profiles with the agreement under it, or JSON.",
)
@source_options
@pass_context
def agreement_command(
    context: Context,
    profile: str,
    suite: str | None,
    min_seeds: int,
    output_format: str,
    source: str,
    results_dir: Path | None,
) -> None:
    """How well a budget profile's ranking agrees with `full`'s, over the recipes run at both.

    Spearman ρ and Kendall τ-b between the two profiles' recipe means, each with a 95% bootstrap
    interval over seeds (ρ also over recipes, Fisher z), and how many steps have the same sign
    and the same verdict at both. Both profiles' runs come from the store and the run records
    under results/runs (--source). With a handful of recipes the interval over recipes is wide:
    read n before ρ.
    """
    from harness.identity import current_hashes
    from harness.results import leaderboard
    from harness.results.agreement import agreement, budget_line
    from harness.results.records import reference_rows
    from harness.run.devices import visible_gpus
    from harness.sweep.plan import variant_here

    chosen = context.config.profile(profile)
    if not chosen.is_budget:
        raise click.UsageError(
            f"profile {profile!r} caps neither epochs nor images: it is not a budget to compare with full"
        )
    runs = _run_sources(context, source, results_dir)
    variant = variant_here(SweepSettings(), visible_gpus())
    hashes = current_hashes(context.config, profile, variant)
    rows = leaderboard.collect_rows(runs, profile=profile, current_hashes=hashes)
    reference = reference_rows(context.config, runs, variant)
    if suite is not None:
        names = {r.name for r in context.config.select(suite=suite)}
        rows, reference = [r for r in rows if r.recipe in names], [r for r in reference if r.recipe in names]
    rows, reference = [r for r in rows if r.n >= min_seeds], [r for r in reference if r.n >= min_seeds]
    measured = agreement(context.config, rows, reference, profile=profile)
    here = {r.recipe: r for r in rows}
    there = {r.recipe: r for r in reference}
    if output_format == "json":
        record = dataclasses.asdict(measured)
        record["budget"] = budget_line(context.config, profile, measured)
        record["means"] = {name: {profile: here[name].mean, "full": there[name].mean} for name in measured.recipes}
        click.echo(json.dumps(record, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"Profile '{profile}' against 'full': {measured.n} recipes with runs at both")
    for column in ("recipe", f"n {profile}/full", f"{profile} %", "rank", "full %", "rank"):
        table.add_column(column, justify="left" if column == "recipe" else "right")
    rank_here = {r: i + 1 for i, r in enumerate(sorted(measured.recipes, key=lambda name: -here[name].mean))}
    rank_there = {r: i + 1 for i, r in enumerate(sorted(measured.recipes, key=lambda name: -there[name].mean))}
    for name in sorted(measured.recipes, key=rank_there.get):
        table.add_row(
            name,
            f"{here[name].n}/{there[name].n}",
            f"{100 * here[name].mean:.2f}",
            str(rank_here[name]),
            f"{100 * there[name].mean:.2f}",
            str(rank_there[name]),
        )
    console = _rich_console()
    console.print(table)
    console.print(budget_line(context.config, profile, measured), markup=False, soft_wrap=True)


@main.command("ui")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes the UI to your network."
)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Port to listen on.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="uvicorn worker processes serving the UI (MLflow's own default is 4; one is plenty for one person).",
)
@click.option(
    "--job-execution",
    is_flag=True,
    help="Also start MLflow's job consumers (only its GenAI evaluation jobs need them; off, the UI starts faster).",
)
@click.option(
    "--browser/--no-browser",
    default=None,
    help="Open the experiment's link in this desktop's web browser once the UI answers [default: when a desktop "
    "session is found: DISPLAY or WAYLAND_DISPLAY, macOS, Windows].",
)
@pass_context
def ui_command(context: Context, host: str, port: int, workers: int, job_execution: bool, browser: bool | None) -> None:
    """Open the MLflow UI on this harness's store (the same --tracking-uri resolution as runs).

    Prints the experiment's run list in MLflow's "Model training" mode (and opens it on a
    desktop). One Ctrl-C or SIGTERM stops the server and every process it started.
    """
    import tempfile

    from harness.cli import ui
    from harness.store.tracking import (
        ExperimentMissing,
        fold_mlflow_errors,
        open_tracker,
        redacted,
        resolve_tracking_uri,
    )

    uri = resolve_tracking_uri(context.tracking_uri)
    fold_mlflow_errors(not context.debug)
    if uri.startswith(("http://", "https://")):
        raise click.UsageError(f"{redacted(uri)} is a tracking server: open it in a browser instead")
    try:
        experiment_id = open_tracker(uri, context.experiment, create=False).experiment_id
    except ExperimentMissing:
        experiment_id = None  # a store without this experiment: the UI still shows what it has
    ui.check_port_free(host, port)
    link = ui.runs_url(host, port, experiment_id)
    url = ui.base_url(host, port)
    click.echo(f"MLflow UI for {redacted(uri)}: starting on {url} (Ctrl-C to stop) …", err=True)

    def ready() -> None:
        click.echo(f"ready: {link}", err=True)
        click.echo(ui.MODE_TIP, err=True)
        if browser or (browser is None and ui.desktop_session()):
            ui.open_in_browser(link)

    with tempfile.TemporaryDirectory(prefix="bench-ui-") as empty:  # the server's app dir: nothing to import
        code = ui.serve(
            ui.server_command(uri, host, port, workers, app_dir=empty),
            ui.server_environment(job_execution),
            url=url,
            on_ready=ready,
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
