"""What a sweep will cost, before it starts: per recipe, one run's FLOPs and images
(``harness.cost.run_cost``), the epochs it is expected to train, and its seconds on this machine (from a
cached probe, ``harness.cost.probe``, else from its FLOPs at the rate the probes reached here) and on
the reference GPU (measured there, ``harness.cost.gpu_model``).

- **Epochs**: the mean epochs of the recipe's finished runs under its current training at this
  profile, on any device (``finished_runs``: the store's and the records under results/runs, as
  the leaderboard reads them); where none finished, the profile's maximum, labelled "at most"
  (early stopping can only end a run sooner).
- **Seconds**: ``run_seconds`` is what every caller uses: start-up, features (the first seed of a
  frozen-backbone recipe only), the epochs left, the test set.
- **Calibration**: ``calibrate`` sets the estimate against the finished runs it can find
  (``bench list --cost --calibrate``).

The sweep process never imports a Keras backend: what the cache lacks (FLOPs of a model not
built yet, a first probe to know this machine's rate) is filled by ``python -m harness.cost.probe``
in a child process, which costs a few seconds the first time and nothing after.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from harness.config import BenchConfig, Recipe
from harness.cost.probe import contended, load_probes, machine_rates, probe_key, rate_for
from harness.cost.run_cost import (
    ModelFlops,
    Probe,
    RunCost,
    RunSeconds,
    flops_seconds,
    probe_seconds,
    run_cost,
)
from harness.errors import HarnessError


@dataclass(frozen=True)
class Estimate:
    """One run of a recipe: its cost (at most), the epochs it is expected to train, and its
    seconds here and on the reference GPU."""

    cost: RunCost
    here: RunSeconds
    basis: str  # "probe" (measured here) or "flops" (its FLOPs at this machine's probed rate)
    gpu: RunSeconds | None  # on the reference GPU (harness.cost.gpu_model.REFERENCE); None: no reference
    gpu_basis: str  # "measured" (its training step was timed there), "fit", or "none"
    epochs: float  # expected: the mean of finished runs, else cost.epochs
    epochs_from: int = 0  # finished runs the expected epochs come from (0: at most, the profile's cap)
    gpu_share: float = 1.0  # of one GPU a run takes when runs are packed (harness.cost.gpu_model.gpu_share)
    contended: bool = False  # its probe (or the rate it reads) was timed while other work held the CPU

    @property
    def seconds(self) -> float:
        """Expected seconds of one run here (the recipe's first seed: features included)."""
        return run_seconds(self)

    @property
    def max_seconds(self) -> float:
        """At most: every epoch the profile allows."""
        return run_seconds(self, epochs=self.cost.epochs)

    @property
    def gpu_seconds(self) -> float | None:
        """Expected seconds of one run on the reference GPU."""
        return run_seconds(self, on="gpu")

    @property
    def feature_seconds(self) -> float:
        """Of ``seconds``, a frozen backbone's features (the recipe's first seed only)."""
        return self.here.features

    @property
    def epochs_words(self) -> str:
        """'41.3 (3 runs)' or 'at most 500'."""
        if self.epochs_from:
            return f"{self.epochs:.1f} ({self.epochs_from} run{'s' * (self.epochs_from != 1)})"
        return f"at most {self.cost.epochs}"


def run_seconds(
    estimate: Estimate,
    *,
    done_epochs: float = 0.0,
    first_seed: bool = True,
    epochs: float | None = None,
    on: str = "here",
) -> float | None:
    """Expected seconds of one run: start-up, its features if ``first_seed`` (a frozen backbone's
    features are extracted by a recipe's first run and read by the others), the epochs left of
    ``epochs`` (default: the expected epochs) after ``done_epochs`` (a checkpoint's), and the test
    set; ``on="gpu"``: on the reference GPU (None without one). Every caller that needs a run's
    seconds (the cost line, the order runs start in, a time budget) uses this."""
    seconds = estimate.here if on == "here" else estimate.gpu
    if seconds is None:
        return None
    return seconds.total(estimate.epochs if epochs is None else epochs, done=done_epochs, first_seed=first_seed)


def fill_cache(
    config: BenchConfig,
    recipes: list[Recipe],
    *,
    timed: bool,
    precision: str = "float32",
    jit_compile: str = "auto",
    on_done: Callable[[str, bool], None] | None = None,
) -> dict[str, dict]:
    """Count FLOPs of (and, if ``timed``, probe) ``recipes`` in a child process, and return the
    cache entries it made by key (also saved to the cache file where it can be written). However
    this call ends (an error, Ctrl-C or SIGTERM as KeyboardInterrupt), the child has ended with it."""
    if not recipes:
        return {}
    request = {
        "config": str(config.path.resolve()),
        "recipes": [r.name for r in recipes],
        # the cache keys this process looks the entries up by: the child saves under these
        "keys": {r.name: probe_key(config, r, precision=precision, jit_compile=jit_compile) for r in recipes},
        "precision": precision,
        "jit_compile": jit_compile,
        "timed": timed,
    }
    process = subprocess.Popen(
        [sys.executable, "-P", "-m", "harness.cost.probe"],  # -P: the working directory is not on sys.path
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    made = {}
    try:
        process.stdin.write(json.dumps(request))
        process.stdin.close()
        for line in process.stdout:
            with_result = json.loads(line)
            made[with_result["key"]] = with_result["entry"]
            if on_done:
                on_done(with_result["recipe"], with_result["measured"])
        stderr = process.stderr.read()
        returncode = process.wait()
    finally:
        _end(process)
    if returncode != 0:
        last = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
        raise HarnessError(f"measuring the recipes' cost failed: {last[0]}")
    return made


def _end(process: subprocess.Popen, grace: float = 5.0) -> None:
    """Terminate ``process`` if it still runs (the probe writes its cache atomically, so a
    probe cut short leaves the cache as it was), then kill it if it outlives ``grace``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


REFERENCE_PROBES = 3  # probes a machine needs before FLOPs alone are turned into seconds
QUIET_LOAD = 0.25  # 1-minute load average per CPU under which the machine counts as quiet


def quiet_now() -> bool:
    """Whether the machine is quiet enough now to time a probe again (load average per CPU
    under ``QUIET_LOAD``; unknown counts as busy)."""
    from harness.environment import machine_load

    load = machine_load()
    return load is not None and load < QUIET_LOAD


MEASURING = "measuring this machine, first run only"  # what a status line says while a probe child works


def _references(recipes: list[Recipe], stored: dict, keys: dict[str, str]) -> list[Recipe]:
    """The smallest, the median and the largest CNN of ``recipes`` by training FLOPs, not probed
    yet: the FLOP rates they reach here stand in for the recipes of similar size."""
    from harness.identity import is_transfer

    def flops(recipe: Recipe) -> int:
        return ModelFlops(**stored[keys[recipe.name]]["flops"]).train

    pool = sorted([r for r in recipes if not is_transfer(r)] or recipes, key=flops)
    chosen = {pool[0].name: pool[0], pool[len(pool) // 2].name: pool[len(pool) // 2], pool[-1].name: pool[-1]}
    return [r for r in chosen.values() if not stored[keys[r.name]].get("probe")]


def _counted(
    config: BenchConfig,
    recipes: list[Recipe],
    profile: str,
    *,
    options: dict[str, str],
    measure: bool,
    on_done: Callable[[str, bool], None] | None,
    probes: bool,
    on_status: Callable[[str], None] | None = None,
) -> tuple[dict[str, tuple[RunCost, dict]], dict]:
    """Each recipe's ``RunCost`` and cache entry, after filling what the cache lacks (FLOPs; with
    ``probes``, a probe of the references a machine needs; with ``measure``, of every recipe).
    ``on_status`` hears, before each such child process starts, what it is about to measure."""
    keys = {r.name: probe_key(config, r, **options) for r in recipes}
    # Read before any probe of ours runs: the load average counts our own probe children too (a
    # minute of probing alone read as busy, so `--measure` never re-timed a slowed probe).
    quiet = quiet_now()
    stored = load_probes()
    missing = [r for r in recipes if keys[r.name] not in stored or (measure and not stored[keys[r.name]]["probe"])]
    if missing and on_status:
        what = "timing" if measure else "counting the FLOPs of"
        on_status(f"{MEASURING}: {what} {len(missing)} model{'s' * (len(missing) != 1)} …")
    # The child's own entries win over the file: another process may rewrite it meanwhile, and a
    # cache that cannot be written holds none of them.
    made = fill_cache(config, missing, timed=measure, on_done=on_done, **options)
    stored = load_probes() | made
    if probes and len(machine_rates(stored)) < REFERENCE_PROBES:
        references = _references(recipes, stored, keys)
        if references and on_status:
            on_status(f"{MEASURING}: timing {len(references)} reference model{'s' * (len(references) != 1)} …")
        made |= fill_cache(config, references, timed=True, on_done=on_done, **options)
        stored = load_probes() | made
    # A probe that other work slowed is timed again once the machine is quiet (never while it is
    # busy: that would only time the same contention again, at every sweep's start). Probes this
    # call just made are the latest word on that: each recorded the share other work held.
    fresh = [entry for entry in made.values() if entry.get("probe")]
    if fresh:
        quiet = not any(contended(entry) for entry in fresh)
    slowed = [r for r in recipes if contended(stored[keys[r.name]])]
    if slowed and (probes or measure) and quiet:
        if on_status:
            on_status(
                f"measuring this machine again, now that it is quiet: {len(slowed)} model"
                f"{'s' * (len(slowed) != 1)} timed while other work held the CPU …"
            )
        made |= fill_cache(config, slowed, timed=True, on_done=on_done, **options)
        stored = load_probes() | made
    counted = {}
    for recipe in recipes:
        entry = stored[keys[recipe.name]]
        head = None if entry.get("head") is None else ModelFlops(**entry["head"])
        counted[recipe.name] = (run_cost(config, recipe, profile, flops=ModelFlops(**entry["flops"]), head=head), entry)
    return counted, stored


def estimate(
    config: BenchConfig,
    recipes: list[Recipe],
    profile: str,
    *,
    precision: str = "float32",
    jit_compile: str = "auto",
    measure: bool = False,
    on_done: Callable[[str, bool], None] | None = None,
    runs: list | None = None,
    gpu_memory_bytes: float | None = None,
    on_status: Callable[[str], None] | None = None,
) -> list[Estimate]:
    """One ``Estimate`` per recipe under ``profile``. ``measure``: probe every recipe without
    a probe on this machine (slow: seconds to minutes each); otherwise count only the missing
    FLOPs, plus probes of three references if this machine has none yet. ``runs``: finished runs
    (``finished_runs``) for the expected epochs. ``gpu_memory_bytes``: the memory of this
    machine's GPUs, for the share a run takes of one (default: the reference GPU's). ``on_status``
    hears, before each child process starts, what it is about to measure (a status line)."""
    from harness.cost.gpu_model import gpu_share, load_reference
    from harness.cost.gpu_model import run_seconds as gpu_run_seconds

    options = {"precision": precision, "jit_compile": jit_compile}
    counted, stored = _counted(
        config, recipes, profile, options=options, measure=measure, on_done=on_done, probes=True, on_status=on_status
    )
    rates = machine_rates(stored)
    expected = expected_epochs(config, recipes, profile, runs or [])
    reference = load_reference()
    every_probe_slowed = all(rate.contended for _, rate in rates)
    estimates = []
    for recipe in recipes:
        cost, entry = counted[recipe.name]
        probe = None if entry.get("probe") is None else Probe(**entry["probe"])
        if probe is not None and probe.contended and not every_probe_slowed:
            probe = None  # a quiet probe's FLOP rate reads nearer than this one slowed by other work
        if probe is not None:
            here, basis, slowed = probe_seconds(cost, probe), "probe", probe.contended
        else:
            rate = rate_for(cost.train_gflops * 1e9, rates)
            here, basis, slowed = flops_seconds(cost, rate.flops_per_second), "flops", rate.contended
        gpu, gpu_basis, share = None, "none", 1.0
        if reference is not None:
            gpu, gpu_basis = gpu_run_seconds(reference, cost)
            share = gpu_share(reference, cost, gpu_memory_bytes)
        epochs, runs_behind = expected.get(recipe.name, (float(cost.epochs), 0))
        estimates.append(
            Estimate(
                cost=cost,
                here=here,
                basis=basis,
                gpu=gpu,
                gpu_basis=gpu_basis,
                epochs=min(epochs, float(cost.epochs)),
                epochs_from=runs_behind,
                gpu_share=share,
                contended=slowed,
            )
        )
    return estimates


def gpu_shares(
    config: BenchConfig,
    recipes: list[Recipe],
    profile: str,
    *,
    gpu_memory_bytes: float | None = None,
    precision: str = "float32",
    jit_compile: str = "auto",
) -> dict[str, float]:
    """The share of one GPU a run of each recipe takes (``harness.cost.gpu_model.gpu_share``), from
    FLOPs and activations alone (no probe): what ``--jobs-per-gpu auto`` packs by. Without a
    reference GPU every run takes a whole GPU."""
    from harness.cost.gpu_model import gpu_share, load_reference

    reference = load_reference()
    if reference is None:
        return {recipe.name: 1.0 for recipe in recipes}
    options = {"precision": precision, "jit_compile": jit_compile}
    counted, _ = _counted(config, recipes, profile, options=options, measure=False, on_done=None, probes=False)
    return {name: gpu_share(reference, cost, gpu_memory_bytes) for name, (cost, _) in counted.items()}


# Finished runs: expected epochs and calibration -------------------------------------------------


def finished_runs(config: BenchConfig, store=None, profile: str | None = None) -> list:
    """The FINISHED runs this checkout knows of, as the leaderboard reads them: ``store``'s child
    runs (a ``Tracker``, or None) and the records under results/runs (``harness.results.records``), a run
    in both counted once. A store or records that cannot be read give no runs (an estimate never
    fails on them)."""
    from harness.results.records import RunSources, read_records, results_folder

    try:
        records = read_records(results_folder(config.path))
    except HarnessError:
        records = []
    try:
        runs = RunSources(store, records).child_runs(profile)
    except Exception:  # noqa: BLE001  a store that fails here fails the sweep later, in one line, where it must
        runs = RunSources(None, records).child_runs(profile)
    return [run for run in runs if run.info.status == "FINISHED"]


def training_hashes(config: BenchConfig, recipe: Recipe, profile: str) -> set[str]:
    """Every config hash ``recipe`` has under ``profile`` today, whatever the device, backend,
    precision or determinism: runs under any of them trained as the recipe now says, which is
    what decides when early stopping ends them."""
    import itertools

    from harness.identity import PRECISIONS, Variant, config_hash
    from harness.run.devices import BACKENDS, DEVICE_CLASSES

    chosen = config.profile(profile)
    return {
        config_hash(config, recipe, chosen, Variant(precision=p, device=d, backend=b, deterministic=t))
        for p, d, b, t in itertools.product(PRECISIONS, DEVICE_CLASSES, BACKENDS, (False, True))
    }


def _runs_by_recipe(config: BenchConfig, recipes: list[Recipe], profile: str, runs: list) -> dict[str, list]:
    """``runs`` of each recipe under ``profile`` and its current training, one per identity."""
    from harness.store.claims import one_per_identity
    from harness.store.schema import TAG_CONFIG_HASH, TAG_PROFILE, TAG_RECIPE

    wanted = {recipe.name: recipe for recipe in recipes}
    grouped: dict[str, list] = {}
    for run in runs:
        tags = run.data.tags
        if tags.get(TAG_RECIPE) in wanted and tags.get(TAG_PROFILE) == profile and run.info.status == "FINISHED":
            grouped.setdefault(tags[TAG_RECIPE], []).append(run)
    kept = {}
    for name, members in grouped.items():
        hashes = training_hashes(config, wanted[name], profile)
        current = [run for run in members if run.data.tags.get(TAG_CONFIG_HASH) in hashes]
        if current:
            kept[name] = one_per_identity(current)
    return kept


def expected_epochs(
    config: BenchConfig, recipes: list[Recipe], profile: str, runs: list
) -> dict[str, tuple[float, int]]:
    """(mean epochs, runs) of each recipe that has finished runs with a logged epoch count under
    ``profile`` and its current training; recipes without are left out (at most, then)."""
    from harness.store.schema import METRIC_EPOCHS_RUN, metric

    found = {}
    for name, members in _runs_by_recipe(config, recipes, profile, runs).items():
        epochs = [value for run in members if (value := metric(run.data.metrics, METRIC_EPOCHS_RUN)) is not None]
        if epochs:
            found[name] = (statistics.fmean(epochs), len(epochs))
    return found


@dataclass(frozen=True)
class Calibration:
    """One recipe's estimate here against its finished runs on this device class."""

    recipe: str
    runs: int
    hardware: str  # where the runs trained (several joined by "; ")
    epochs: float  # the runs' mean epochs
    measured_seconds: float  # their mean fit seconds (training epochs with validation)
    estimated_seconds: float  # this machine's estimate of those epochs (``RunSeconds.epoch`` × epochs)
    measured_wall_seconds: float | None  # start to end of the runs that have both (None: not known)
    estimated_wall_seconds: float  # the whole run at those epochs
    others_cpu: float | None = None  # other work's mean share of the CPUs while they trained (None: not recorded)
    others_runs: int = 0  # the runs that recorded it
    # Estimate ÷ measured over the quiet runs alone: on this machine's hardware, other work's
    # share recorded and at most ``BUSY`` (None: no such run). The other runs' seconds include
    # whatever slowed them; these say how good the estimate is.
    quiet_ratio: float | None = None
    quiet_runs: int = 0

    @property
    def ratio(self) -> float:
        return self.estimated_seconds / self.measured_seconds


def calibrate(
    config: BenchConfig, estimates: list[Estimate], runs: list, *, device: str = "cpu", hardware: str | None = None
) -> list[Calibration]:
    """Each estimated recipe with finished runs under the estimates' profile on ``device``: its
    runs' measured fit seconds against this machine's estimate at the epochs they trained.
    ``hardware``: this machine in words (default ``machine_words``), for the quiet runs' ratio."""
    from harness.cost.probe import machine_words
    from harness.cost.run_cost import BUSY
    from harness.store.schema import (
        METRIC_EPOCHS_RUN,
        METRIC_OTHERS_CPU,
        METRIC_TRAIN_SECONDS,
        PARAM_HARDWARE,
        TAG_DEVICE,
        metric,
    )

    if not estimates:
        return []
    profile = estimates[0].cost.profile
    by_name = {e.cost.recipe: e for e in estimates}
    recipes = [config.recipe(name) for name in by_name]
    here = [run for run in runs if run.data.tags.get(TAG_DEVICE, "cpu") == device]
    hardware = hardware or machine_words()["hardware"]
    rows = []
    for name, members in _runs_by_recipe(config, recipes, profile, here).items():
        timed = [  # (epochs, fit seconds, run, other work's share or None)
            (epochs, seconds, run, metric(run.data.metrics, METRIC_OTHERS_CPU))
            for run in members
            if (epochs := metric(run.data.metrics, METRIC_EPOCHS_RUN)) is not None
            and (seconds := metric(run.data.metrics, METRIC_TRAIN_SECONDS)) is not None
        ]
        if not timed:
            continue
        e = by_name[name]
        epochs = statistics.fmean(t[0] for t in timed)
        walls = [
            (run.info.end_time - run.info.start_time) / 1000
            for _, _, run, _ in timed
            if run.info.end_time and run.info.start_time and run.info.end_time > run.info.start_time
        ]
        shares = [t[3] for t in timed if t[3] is not None]
        quiet = [
            t for t in timed if t[3] is not None and t[3] <= BUSY and t[2].data.params.get(PARAM_HARDWARE) == hardware
        ]
        rows.append(
            Calibration(
                recipe=name,
                runs=len(timed),
                hardware="; ".join(sorted({t[2].data.params.get(PARAM_HARDWARE, "?") for t in timed})),
                epochs=epochs,
                measured_seconds=statistics.fmean(t[1] for t in timed),
                estimated_seconds=e.here.epoch * epochs,
                measured_wall_seconds=statistics.fmean(walls) if walls else None,
                estimated_wall_seconds=run_seconds(e, epochs=epochs),
                others_cpu=statistics.fmean(shares) if shares else None,
                others_runs=len(shares),
                quiet_ratio=e.here.epoch * statistics.fmean(t[0] for t in quiet) / statistics.fmean(t[1] for t in quiet)
                if quiet
                else None,
                quiet_runs=len(quiet),
            )
        )
    return sorted(rows, key=lambda row: row.recipe)
