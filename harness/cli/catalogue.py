"""``bench list``, ``bench data`` and ``bench cache``: what there is to train on and with, before
anything trains (the recipes and what one run of each costs, the dataset, the feature cache)."""

from __future__ import annotations

import dataclasses
import json

import click

from harness.cli.options import Context, pass_context, rich_console
from harness.errors import HarnessError


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


@click.command("list")
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
    rich_console().print(table)


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
    from harness.cost.run_cost import BUSY, human_duration

    context.config.profile(profile)
    console = rich_console(stderr=True)
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
                "contended": e.contended,
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
        f"busy: that probe was timed while other work held over {BUSY:.0%} of the CPU, so it reads slow (timed again "
        "once the machine is quiet); "
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
            e.basis + (", busy" if e.contended else ""),
            "–" if e.gpu_seconds is None else human_duration(e.gpu_seconds),
            e.gpu_basis,
        )
    rich_console().print(table)
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
    from harness.cost.run_cost import BUSY

    here = machine_words()["hardware"]
    rows = calibrate(context.config, estimates, runs, device="gpu" if _gpus_here() else "cpu", hardware=here)
    if as_json:
        click.echo(json.dumps([{**dataclasses.asdict(row), "ratio": round(row.ratio, 3)} for row in rows], indent=2))
        return
    console = rich_console()
    if not rows:
        console.print("No finished run of these recipes at this profile on this device class to calibrate against.")
        return
    table = Table(
        title=f"Estimate here ({here}) ÷ measured, per recipe: training epochs with their validation",
        caption="measured: the runs' mean time/train_seconds (fit) at the epochs they trained; estimated: this "
        "machine's epoch estimate × those epochs. wall: MLflow start to end of runs that record both, against the "
        "whole estimated run. others' CPU: the share of the CPUs other work held while the runs trained (– where "
        f"not recorded); above {BUSY:.2f} the measured times were slowed by it. quiet: est ÷ measured over the "
        f"runs here that recorded at most {BUSY:.2f} (how many), the ones that test the estimate. Runs on other "
        "hardware than this machine are marked *.",
        caption_justify="left",
    )
    for column in (
        "recipe",
        "runs",
        "epochs",
        "measured",
        "estimated",
        "est ÷ measured",
        "wall est ÷ measured",
        "others' CPU",
        "quiet",
    ):
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
            "–"
            if row.others_cpu is None
            else f"{row.others_cpu:.2f}"
            + ("" if row.others_runs == row.runs else f" ({row.others_runs} of {row.runs})"),
            "–" if row.quiet_ratio is None else f"{row.quiet_ratio:.2f} ({row.quiet_runs})",
        )
    console.print(table)
    ratios = [row.ratio for row in rows]
    quiet = [row.quiet_ratio for row in rows if row.quiet_ratio is not None]
    other = other_machines(rows, here)
    console.print(
        f"estimate ÷ measured: {min(ratios):.2f}–{max(ratios):.2f} over {len(rows)} recipe(s)"
        + (f"; over quiet runs here {min(quiet):.2f}–{max(quiet):.2f} ({len(quiet)} recipe(s))" if quiet else "")
        + (f"; * trained on {', '.join(other)}" if other else "")
    )


def other_machines(rows: list, here: str) -> list[str]:
    """Every machine but this one that the calibration rows' runs trained on, each once (a row's
    ``hardware`` joins its runs' machines with "; ")."""
    return sorted({machine for row in rows for machine in row.hardware.split("; ") if machine != here})


def _gpus_here() -> bool:
    from harness.run.devices import visible_gpus

    return bool(visible_gpus())


@click.command("data")
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

    console = rich_console()
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


@click.command("cache")
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

    console = rich_console()
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
