"""``bench run`` and ``bench all``: a sweep from the command line: its options, the sweep run with
live progress, and what it prints at the end (summary, leaderboard, what a time budget left)."""

from __future__ import annotations

import sys

import click

from harness.cli.options import (
    Context,
    RunsPerGpu,
    board_view_of,
    command_line,
    given_arguments,
    pass_context,
    rich_console,
)
from harness.errors import TrackingError, WeightsMissing
from harness.identity import PRECISIONS
from harness.sweep.plan import SweepSettings

EXIT_SKIPPED = 3  # everything that could train did, but some recipes (or all) could not: missing weights
EXIT_BUDGET = 4  # the time budget ran out with runs paused or not started; the same command continues


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
    from harness.store.connection import redacted, resolve_tracking_uri
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
    from harness.store.connection import ExperimentMissing, StoreMissing

    context.config.profile(settings.profile)  # a typo fails here, before any store is opened
    if settings.executor == "ray":  # a cluster elsewhere cannot reach a local store: said before one is opened
        from harness.sweep.ray_executor import refuse_local_store_on_a_cluster

        refuse_local_store_on_a_cluster(resolve_tracking_uri(context.tracking_uri), settings.address)
    console = rich_console(stderr=True)
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
            f"there is no terminal to confirm it on; to start it anyway: {' '.join(command_line())} --yes",
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
    from harness.store.connection import redacted  # a --tracking-uri's credentials are never printed

    console.print(
        f"Continue with: {redacted(shlex.join(['bench', *given_arguments()]))}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


def _sweep_sources(context: Context, tracker):
    """After a sweep: the store it wrote, and the records under results/ (`full`'s, to compare with)."""
    from harness.results import records as results

    folder = results.results_folder(context.config.path)
    return results.RunSources(tracker, results.read_records(folder), folder=folder)


def _stopped_line(why: str, *, kept_locally: int) -> str:
    """The one line a sweep stopped by its store ends with: why (without credentials), and what
    the rerun will do."""
    from harness.store.connection import redacted

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
    shown = board_view_of(
        context, _sweep_sources(context, tracker), rows, profile=settings.profile, variant=variant, names=recipes
    )
    title = f"Leaderboard, profile '{settings.profile}'"
    rich_console().print(leaderboard.to_rich_table(rows, title=title, budget=shown.budget))


def _print_steps(context: Context, tracker, settings, *, recipes: set[str]) -> None:
    """The step table of the recipes just trained whose previous step was trained too."""
    from harness.identity import current_hashes
    from harness.results import leaderboard, steps

    hashes = current_hashes(context.config, settings.profile, settings.variant)
    rows = leaderboard.only_recipes(
        leaderboard.collect_rows(tracker, profile=settings.profile, current_hashes=hashes), recipes
    )
    shown = board_view_of(
        context,
        _sweep_sources(context, tracker),
        rows,
        profile=settings.profile,
        variant=settings.variant,
        names=recipes,
    )
    deltas = [d for d in shown.deltas if d.base in recipes]
    console = rich_console()
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


@click.command("run")
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


@click.command("all")
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
