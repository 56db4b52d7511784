"""A sweep end to end, as a library function: check what every run needs, plan, run, report.

``run_sweep(config, tracker, recipes, settings, progress)`` is what ``bench run`` and ``bench
all`` call; a notebook or a test can call it without Click. It raises a ``HarnessError`` for
anything that would fail every run (missing weights, no dataset) before training anything,
and returns a ``SweepReport`` with one outcome per planned run.
"""

from __future__ import annotations

import importlib.util
import os

from harness.config import BenchConfig, Recipe
from harness.cost.estimate import MEASURING, estimate, finished_runs, gpu_shares, run_seconds
from harness.cost.run_cost import human_count, human_duration
from harness.errors import HarnessError, TrackingError, WeightsMissing
from harness.identity import is_transfer
from harness.results.parents import ParentFigures
from harness.run.devices import backend_gpus, check_gpus_usable, keras_backend, visible_gpus, worker_environment
from harness.run.train import planned_epochs
from harness.store.connection import store_failure
from harness.store.tracking import Tracker
from harness.sweep.executors import LocalExecutor, Outcome, Progress, SweepReport
from harness.sweep.plan import (
    RunSpec,
    SweepSettings,
    concurrent_jobs,
    order_runs,
    plan,
    run_order,
    runs_per_gpu,
    split_finished,
    variant_here,
)

LONG_SWEEP_SECONDS = 86400.0  # a sweep estimated at more than this here asks before it starts (or --yes)


class NotConfirmed(HarnessError):
    """A sweep estimated at over a day on this machine was not confirmed: nothing was trained."""

    def __init__(self, seconds: float) -> None:
        from harness.cost.run_cost import human_duration

        self.seconds = seconds
        super().__init__(f"not started: estimated at {human_duration(seconds)} on this machine, and not confirmed")


def check_weights(recipes: list[Recipe], weights_dir: str | None, progress: Progress) -> dict[str, str]:
    """Every transfer recipe's pretrained weights are here (or downloaded now) and verified,
    before anything trains. Returns, for each recipe whose backbone's weights are missing or
    fail their hash, one line naming the file, its hash and where it is published."""
    import architectures
    from harness.environment import import_keras_quietly
    from harness.run.weights import resolve

    backbones = sorted({b for r in recipes if (b := architectures.get(r.architecture).backbone) is not None})
    if not backbones:
        return {}
    progress.note(f"Checking pretrained weights ({', '.join(backbones)}) …")
    import_keras_quietly()
    missing: dict[str, str] = {}
    for backbone in backbones:
        try:
            resolve(backbone, weights_dir, download=True)
        except WeightsMissing as error:
            missing[backbone] = str(error)
    return {r.name: missing[b] for r in recipes if (b := architectures.get(r.architecture).backbone) in missing}


def announce_cost(
    config: BenchConfig,
    todo: list[RunSpec],
    skipped: int,
    settings: SweepSettings,
    jobs: int,
    progress: Progress,
    runs: list | None = None,
    done: dict[str, int] | None = None,
    first_epoch: dict[str, float] | None = None,
) -> dict[str, float]:
    """Say what the runs to train will cost (runs, images and PFLOP at most, expected hours here
    and on the reference GPU, with the epochs they rest on) and, on a CPU with the ``full``
    profile, which profile fits instead. ``runs``: finished runs for the expected epochs
    (``harness.cost.estimate.finished_runs``); ``done``: the epochs each run's checkpoint holds, by
    identity. Returns each run's expected seconds left by identity (``harness.cost.estimate.run_seconds``),
    for the order runs start in, the time budget and the progress bar's ETA; ``first_epoch``, where
    given, is filled with each run's seconds to the end of its next epoch (start-up included: a run
    starts under a time budget only if that fits). Estimating builds every recipe's model in a
    probe process: a recipe that cannot be built there would fail every run, so a failure is a
    ``HarnessError`` here, before anything trains."""
    if not todo:
        return {}
    recipes = list({spec.recipe.name: spec.recipe for spec in todo}.values())
    variant = todo[0].identity.variant
    try:
        estimates = estimate(
            config,
            recipes,
            settings.profile,
            precision=variant.precision,
            jit_compile=settings.jit_compile,
            runs=runs,
            on_done=lambda name, measured: progress.status(
                f"{MEASURING}: {'timed' if measured else 'counted'} {name} …", transient=True
            ),
            on_status=progress.status,
        )
    except HarnessError as error:
        raise HarnessError(f"{error}; nothing was trained (it would fail in every run)") from None
    finally:
        progress.status(None)
    by_recipe = {e.cost.recipe: e for e in estimates}
    seconds, gpu, first_seed_seen = {}, 0.0, set()
    for spec in todo:
        e = by_recipe[spec.recipe.name]
        # a frozen backbone's features are extracted by the recipe's first run, then read from the cache
        first = spec.recipe.name not in first_seed_seen
        held = (done or {}).get(spec.identity.identity, 0)
        seconds[spec.identity.identity] = run_seconds(e, first_seed=first, done_epochs=held)
        if first_epoch is not None:
            first_epoch[spec.identity.identity] = run_seconds(e, first_seed=first, done_epochs=held, epochs=held + 1)
        gpu += run_seconds(e, first_seed=first, done_epochs=held, on="gpu") or 0.0
        first_seed_seen.add(spec.recipe.name)
    total = sum(seconds.values())
    images = sum(by_recipe[s.recipe.name].cost.train_images * by_recipe[s.recipe.name].cost.epochs for s in todo)
    pflop = sum(by_recipe[s.recipe.name].cost.total_pflop for s in todo)
    basis = {e.basis for e in estimates}
    how = (
        "measured probes"
        if basis == {"probe"}
        else "FLOPs at this machine's probed rate"
        if basis == {"flops"}
        else "probes and FLOPs"
    )
    slowed = sum(1 for e in estimates if e.contended)
    if slowed:
        how += (
            f"; {slowed} of {len(estimates)} recipes from probes timed while other work held the CPU, which read "
            "slow: they are timed again once the machine is quiet"
        )
    expected = sum(1 for e in estimates if e.epochs_from)
    epochs = (
        "every run at its most epochs"
        if not expected
        else f"epochs expected from finished runs for {expected} of {len(estimates)} recipes, at most for the rest"
    )
    already = f" ({skipped} already finished)" if skipped else ""
    from harness.cost.gpu_model import load_reference

    reference = load_reference()
    on_gpu = "" if reference is None else f", {human_duration(gpu)} on {reference.words} (float32, one run at a time)"
    progress.note(
        f"{len(todo)} runs to train{already}: at most {human_count(images)} training images, {pflop:,.2f} PFLOP; "
        f"about {human_duration(total / jobs)} on this machine with {jobs} at once (from {how}; {epochs}){on_gpu}"
    )
    if variant.device == "cpu" and settings.profile == "full" and total / jobs > 86400:
        cnn = [r for r in recipes if not is_transfer(r)]
        try:
            smaller = estimate(
                config,
                cnn or recipes,
                "cpu",
                precision=variant.precision,
                jit_compile=settings.jit_compile,
                on_status=progress.status,
            )
        finally:
            progress.status(None)
        fits = sum(e.seconds for e in smaller) * settings.seeds
        progress.note(
            f"warning: the full profile trains as the reports did; on this CPU that is about {human_duration(total / jobs)}. "
            f"--profile cpu trains {'the CNN recipes' if cnn else 'these recipes'} × {settings.seeds} seeds in about "
            f"{human_duration(fits)} (3 epochs on 2,500 images: it ranks early learning, not the reports' claims); "
            "the full profile is meant for a GPU."
        )
    return seconds


def packing_shares(
    config: BenchConfig, recipes: list[Recipe], settings: SweepSettings, gpus: list, progress: Progress
) -> dict[str, float] | None:
    """Under ``--jobs-per-gpu auto``, the share of one GPU a run of each recipe takes
    (``harness.cost.gpu_model.gpu_share``, against the smallest GPU's memory), each named in one line;
    None under a fixed ``--jobs-per-gpu`` (every run takes 1/N). Where the shares cannot be
    counted, every run takes a whole GPU, with a note."""
    if settings.jobs_per_gpu != "auto":
        return None
    memory = [gpu.memory_mib for gpu in gpus if gpu.memory_mib]
    try:
        shares = gpu_shares(
            config,
            recipes,
            settings.profile,
            gpu_memory_bytes=min(memory) * 2**20 if memory else None,
            precision=settings.variant.precision,
            jit_compile=settings.jit_compile,
        )
    except HarnessError as error:
        progress.note(f"(--jobs-per-gpu auto: one run per GPU, the shares could not be counted: {error})")
        return {recipe.name: 1.0 for recipe in recipes}
    groups: dict[int, list[str]] = {}
    for name, share in shares.items():
        groups.setdefault(max(1, int(1 / share + 1e-9)), []).append(name)
    for count in sorted(groups, reverse=True):
        names = groups[count]
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        progress.note(f"  {count} per GPU: {shown}")
    return shares


def check_optimizer_options(recipes: list[Recipe]) -> None:
    """Build the optimizer of every recipe that sets ``optimizer_options`` once, here: an unknown
    keyword would otherwise fail every run of it. (Keras is imported only when one does.)"""
    from harness.errors import ConfigError

    for recipe in recipes:
        if not recipe.training.optimizer_options:
            continue
        from harness.run.train import make_optimizer

        try:
            make_optimizer(recipe)
        except Exception as error:  # noqa: BLE001  Keras raises TypeError / ValueError for bad options
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            raise ConfigError(f"recipe {recipe.name}: training.optimizer_options: {first}") from None


def resumable(config: BenchConfig, todo: list[RunSpec], tracker: Tracker, progress: Progress) -> dict[str, int]:
    """The runs of ``todo`` that a checkpoint in this store's cache continues, with its epochs;
    each is named in one line."""
    from harness.run.checkpoint import checkpoint_path, finished_epochs

    done = {}
    for spec in todo:
        identity = spec.identity
        path = checkpoint_path(
            identity.recipe, identity.seed, identity.identity, tracker.tracking_uri, tracker.experiment_name
        )
        epochs = finished_epochs(path) if path.exists() else None
        if epochs:
            done[identity.identity] = epochs
            planned = planned_epochs(spec.recipe, config.profile(spec.profile))
            progress.note(f"{spec.label}: continues from its checkpoint after epoch {epochs} of {planned}")
    return done


def announce_budget(settings: SweepSettings, seconds: dict[str, float], jobs: int, progress: Progress) -> None:
    """Say when the time budget ends and how much of the estimated work fits in it."""
    import datetime
    import time

    ends = datetime.datetime.fromtimestamp(settings.deadline).strftime("%H:%M")
    left = max(settings.deadline - time.time(), 0.0)
    total = sum(seconds.values()) / max(jobs, 1)
    fits = "" if not seconds else f"; the runs to train are estimated at {human_duration(total)}"
    progress.note(
        f"Time budget {human_duration(settings.time_budget or left)}, until {ends}{fits}. Runs start while their first "
        f"epoch fits; at {ends} the runs in flight stop, each keeping its last checkpoint, and the same "
        "command continues them."
    )


def expected_seconds(seconds: dict[str, float], jobs: int, deadline: float | None) -> float:
    """How long the sweep is expected to take here: its runs' estimates shared by ``jobs``, or
    until ``deadline`` (``--time-budget``) when that comes first: what a sweep that stops there
    asks to be confirmed for."""
    import time

    expected = sum(seconds.values()) / max(jobs, 1)
    return expected if deadline is None else min(expected, max(deadline - time.time(), 0.0))


def mend_store(tracker: Tracker, progress: Progress) -> None:
    """Before planning: upload the results a store failure left on disk (``harness.store.spool``), then
    mark runs left RUNNING by dead processes KILLED and close their parents."""
    from harness.store.spool import replay

    try:
        replay(tracker, progress.note)
        for line in tracker.repair():
            progress.note(line)
        moved = tracker.moved_store_note()
        if moved:
            progress.note(moved)
    except TrackingError as error:  # the store is still failing: say so once, plainly
        raise TrackingError(f"the tracking store {tracker.shown_uri} is not usable: {store_failure(error)}") from None


def run_sweep(
    config: BenchConfig,
    tracker: Tracker | None,
    recipes: list[Recipe],
    settings: SweepSettings,
    progress: Progress | None = None,
    *,
    dry_run: bool = False,
) -> SweepReport:
    """Train every (recipe, seed) of ``recipes`` not already FINISHED in ``tracker``'s store.

    First it names the runs a checkpoint continues (``resumable``) and says what the sweep will
    cost (``announce_cost``), then orders the runs (``settings.order``, ``harness.sweep.plan.run_order``)
    and, under a time budget, says when it ends. ``dry_run``: stop there, and return the runs it
    would train as PLANNED outcomes (finished ones as SKIPPED), in the order they would start,
    having written nothing to the store (``tracker`` None: there is no store yet, nothing is
    finished or resumable). A sweep expected to take over a day here (``expected_seconds``) is
    confirmed first (``progress.confirm``; ``NotConfirmed`` when it is not). Ctrl-C
    (KeyboardInterrupt) during training stops the runs in flight and returns the report with
    ``interrupted`` set; finished runs are kept, and rerunning the same sweep trains only what
    is missing, each stopped run from its last checkpoint. At ``settings.deadline`` the runs in
    flight pause (PAUSED) and the rest are LEFT (``report.budget_spent``).
    """
    from harness.run.data import load_cifar10, split_indices

    progress = progress or Progress()
    if not recipes:
        raise HarnessError("no recipe matches the selection")
    config.profile(settings.profile)
    if settings.system_metrics and importlib.util.find_spec("psutil") is None:
        raise HarnessError("--system-metrics needs psutil: pip install 'cifar10-bench[system-metrics]'")
    if settings.executor == "ray" and importlib.util.find_spec("ray") is None:  # a dry run fails as the run would
        raise HarnessError("--executor ray needs Ray: pip install 'cifar10-bench[ray]'")
    if (
        settings.executor == "ray" and tracker is not None
    ):  # before anything is read: a cluster elsewhere cannot reach a local store
        from harness.sweep.ray_executor import refuse_local_store_on_a_cluster

        refuse_local_store_on_a_cluster(tracker.tracking_uri, settings.address)
    if not dry_run:  # a dry run only reads: the spool and what needs repair wait for the real run
        mend_store(tracker, progress)
    progress.note("Checking the dataset …")
    data = load_cifar10(settings.data_path)
    fingerprint = data.fingerprint
    check_optimizer_options(recipes)
    unavailable = {} if settings.variant.random_weights else check_weights(recipes, settings.weights_dir, progress)
    if unavailable:
        for reason in dict.fromkeys(unavailable.values()):
            names = [name for name, why in unavailable.items() if why == reason]
            progress.note(f"skipping {', '.join(names)}: {reason}")
        recipes = [r for r in recipes if r.name not in unavailable]
        if not recipes:
            raise WeightsMissing(
                "no recipe of the selection can train: their pretrained weights are missing (see above; "
                "pass --weights-dir DIR, or --random-weights to test the plumbing)"
            )
    # A split that cannot be made fails here, once, not in every run.
    split_indices(data, **config.split_options(settings.profile))
    del data
    gpus = visible_gpus() if settings.executor == "local" else []
    if gpus:  # every run is planned for a GPU: fail once here if the backend cannot see one
        backend = keras_backend()
        progress.note(f"Checking that {backend} sees the GPUs …")
        seen = backend_gpus(backend, worker_environment(os.environ, gpu=gpus[0].id))
        check_gpus_usable(backend, gpus, seen)
    specs = plan(
        config,
        recipes,
        profile=settings.profile,
        seeds=list(range(settings.seeds)),
        data_fingerprint=fingerprint,
        variant=variant_here(settings, gpus),
    )
    jobs, capped = concurrent_jobs(settings, gpus)
    if capped:
        progress.note(capped)
    if gpus:
        names = ", ".join(f"{gpu.id}: {gpu.name}" for gpu in gpus)
        per_gpu = (
            f"as many per GPU as their shares of it allow, at most {runs_per_gpu(settings)} (--jobs-per-gpu auto)"
            if settings.jobs_per_gpu == "auto"
            else f"at most {settings.jobs_per_gpu} per GPU"
        )
        progress.note(f"GPUs {names}; {jobs} run(s) at once, {per_gpu}")
    finished = set() if tracker is None else tracker.finished_identities()
    todo, _ = split_finished(specs, finished)
    done = {} if tracker is None else resumable(config, todo, tracker, progress)
    runs = finished_runs(config, tracker, settings.profile)
    first_epoch: dict[str, float] = {}
    seconds = announce_cost(
        config, todo, len(specs) - len(todo), settings, jobs, progress, runs, done=done, first_epoch=first_epoch
    )
    progress.estimated(seconds)
    order = run_order(settings.order, jobs=jobs, budget=settings.deadline is not None)
    specs = order_runs(specs, seconds, order)
    if order != "file" and len(seconds) > 1:
        progress.note(f"Runs start {order} first (--order {settings.order}; estimated time left of each run).")
    if settings.deadline is not None:
        announce_budget(settings, seconds, jobs, progress)
    shares = packing_shares(config, recipes, settings, gpus, progress) if gpus and todo else None
    if dry_run:
        return SweepReport(
            outcomes=[
                Outcome(spec=s, status="SKIPPED" if s.identity.identity in finished else "PLANNED") for s in specs
            ]
        )
    expected = expected_seconds(seconds, jobs, settings.deadline)
    if expected > LONG_SWEEP_SECONDS and not progress.confirm(
        f"Start it? It would take about {human_duration(expected)} on this machine (estimate above)."
    ):
        raise NotConfirmed(expected)
    if settings.executor == "ray":
        from harness.sweep.ray_executor import RayExecutor

        executor: LocalExecutor = RayExecutor(config, tracker, settings, progress=progress, jobs=jobs)
    else:
        gpu_ids = [gpu.id for gpu in gpus]
        executor = LocalExecutor(config, tracker, settings, progress=progress, gpus=gpu_ids, jobs=jobs, shares=shares)
    parents = ParentFigures(config, tracker, settings.variant)  # what each parent shows as its seeds end
    report = executor.sweep(
        specs,
        first_epoch_seconds=first_epoch,
        on_board_moved=parents.update_boards,
        on_group_done=parents.publish_plots,
    )
    report.unavailable = unavailable
    report.seconds_left = {
        o.spec.identity.identity: seconds[o.spec.identity.identity]
        for o in report.outcomes
        if o.status in ("PAUSED", "LEFT") and o.spec.identity.identity in seconds
    }
    return report
