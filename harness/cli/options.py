"""What every ``bench`` command shares: the context the group builds (benchmarks file, store,
dataset), the group's options a command also accepts after its name, the options and option types
more than one command takes, and the console they print on."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from harness import files as outputs
from harness.config import BenchConfig, load_config
from harness.errors import HarnessError

DEFAULT_CONFIG = "benchmarks.toml"


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
        from harness.store.connection import fold_mlflow_errors
        from harness.store.tracking import open_tracker

        fold_mlflow_errors(not self.debug)  # MLflow's ERROR tracebacks: the harness says each failure in one line
        tracker = open_tracker(self.tracking_uri, self.experiment, create=create)
        tracker.command_line = ["bench", *given_arguments()]
        tracker.command = command_line()
        return tracker


def given_arguments() -> list[str]:
    """The arguments `bench` was given (under a CliRunner, not ``sys.argv``: that is pytest's)."""
    context = click.get_current_context(silent=True)
    return sys.argv[1:] if context is None else context.meta.get(ARGUMENTS_KEY, sys.argv[1:])


def command_line() -> list[str]:
    """``bench all --profile smoke --seeds 2``: the command being run and its arguments, without
    the global options before it (the MLflow UI's Source column shows the start of it)."""
    context = click.get_current_context(silent=True)
    arguments = given_arguments()
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
            from harness.store.connection import redacted

            raise click.ClickException(redacted(str(error))) from None  # never a URI's credentials


def rich_console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # A pipe or file gets the width COLUMNS says, else the full table (not one squeezed into 80 columns).
    width = os.environ.get("COLUMNS", "")
    return Console(stderr=stderr, width=None if stream.isatty() else int(width) if width.isdigit() else 220)


def board_view_of(context: Context, runs, rows, *, profile: str, variant, names=None, against: str = "previous"):
    """``rows`` (one profile's) with their verdicts and, for a budget profile, its line with the
    agreement measured against `full`'s runs among ``runs`` (store and records)."""
    from harness.results.records import board_view

    return board_view(context.config, runs, rows, profile=profile, variant=variant, names=names, against=against)


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


def output_options(format_help: str):
    """--format table|markdown|csv|json and --output FILE, shared by `leaderboard` and `steps`."""

    def decorate(command):
        command = click.option(
            "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout."
        )(command)
        return click.option(
            "--format",
            "output_format",
            type=click.Choice(["table", "markdown", "csv", "json"]),
            default="table",
            show_default=True,
            help=format_help,
        )(command)

    return decorate


def check_outputs(output: Path | None, readme: Path | None, **folders: Path | None) -> None:
    """Every path a command will write, checked before it reads the store: one line naming the
    option and the path, not a traceback after the work."""
    if output is not None:
        outputs.check_file_target(output, "--output")
    if readme is not None and not readme.is_file():
        raise outputs.OutputError(f"--update-readme {readme}: no such file (it must hold the block's markers)")
    for option, folder in folders.items():
        if folder is not None:
            outputs.check_folder_target(folder, f"--{option}")


def readme_command(name: str, profile: str, suite: str | None, min_seeds: int, source: str = "both") -> str:
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


def run_sources(context: Context, source: str, results_dir: Path | None, *, create_store: bool = False):
    """The runs a board reads (``harness.results.records.RunSources``). With ``both``, a store that does
    not exist is no store (never created by a reading command); with neither a store nor a
    record, the store's error says so."""
    from harness.results import records as results
    from harness.store.connection import ExperimentMissing, StoreMissing

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
