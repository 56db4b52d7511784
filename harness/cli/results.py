"""``bench leaderboard``, ``bench steps``, ``bench agreement`` and ``bench import``: results read
back from the store and the run records, ranked, compared and written out (README blocks, plots,
published records)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from harness import files as outputs
from harness.cli.options import (
    Context,
    board_view_of,
    check_outputs,
    command_line,
    output_options,
    pass_context,
    readme_command,
    readme_options,
    rich_console,
    run_sources,
    source_options,
)
from harness.identity import PRECISIONS
from harness.sweep.plan import SweepSettings


@click.command("leaderboard")
@click.option("--profile", default=None, help="Only this profile [default: every profile, each ranked on its own].")
@output_options("Output format.")
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
    from harness.results.verdicts import without_claim_checks
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
    check_outputs(output, readme, plots=plots_dir, results=results_dir if publish else None)
    runs = run_sources(context, source, results_dir, create_store=plots_dir is not None and source != "results")
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
        views[name] = board_view_of(
            context, runs, subset, profile=name, variant=variant, names={r.recipe for r in subset}
        )
        if views[name].budget:  # its stale rows, ranked apart, check no claim either
            without_claim_checks([r for r in rows if r.profile == name and r.stale])
    budget = views[profile].budget if profile in views else None
    if plots_dir is not None:
        _write_plots(runs, rows, plots_dir, profile=profile, budget=budget)
    if publish:
        _publish(context, runs, rows, pooled, results_dir)
    if readme is not None:
        if not rows:
            raise click.ClickException(f"no finished runs for profile {profile!r}: nothing to put in {readme}")
        command = readme_command("leaderboard", profile, suite, min_seeds, source)
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
            rich_console().print(leaderboard.to_rich_table(subset, title=title, budget=line, wide=wide))
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
    from harness.store.connection import redacted

    if not rows:
        raise click.ClickException("no finished runs for this profile: nothing to publish")
    if runs.store is None:
        raise click.ClickException(f"{runs.where}: no MLflow store here, so no run to publish")
    folder = results.results_folder(context.config.path, results_dir)
    stored, passed = results.publishable(runs.behind(rows, pooled))
    made_by = redacted(" ".join(command_line())) + f" (harness {git_commit(Path(__file__).resolve().parent)})"
    report = results.write_records(folder, (results.record_of(runs.store, run, made_by=made_by) for run in stored))
    click.echo(report.line(folder) + (f"; {passed} runs are records already" if passed else ""), err=True)
    for line in report.conflicts:
        click.echo(line, err=True)
    if report.conflicts:
        raise click.ClickException(
            f"{len(report.conflicts)} record(s) kept as they were: another run of the same identity is published"
        )


@click.command("import")
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


@click.command("steps")
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
@output_options("Output format: rich tables in the terminal (markdown when written to a file), or markdown, csv, json.")
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
    check_outputs(output, readme, plots=plots_dir)
    names = {r.name for r in context.config.select(suite=suite)}
    runs = run_sources(context, source, results_dir, create_store=plots_dir is not None and source != "results")
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
    shown = board_view_of(context, runs, rows, profile=profile, variant=variant, names=names, against=against)
    deltas = [d for d in shown.deltas if min_seeds == 1 or d.base in names]
    if not deltas:
        raise click.ClickException(f"no recipe built from another in suite {suite!r}: no steps to compare")
    if readme is not None:
        from harness.results.readme import replace_block

        command = readme_command("steps", profile, suite, min_seeds, source) + (
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
        console = rich_console()
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


@click.command("agreement")
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
    runs = run_sources(context, source, results_dir)
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
    console = rich_console()
    console.print(table)
    console.print(budget_line(context.config, profile, measured), markup=False, soft_wrap=True)
