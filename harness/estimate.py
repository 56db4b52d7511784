"""What a sweep will cost, before it starts: per recipe, one run's FLOPs and images
(``harness.cost``) and its seconds on this machine from a cached probe (``harness.probe``),
else from its FLOPs at the rate the probes reached here.

The sweep process never imports a Keras backend: what the cache lacks (FLOPs of a model not
built yet, a first probe to know this machine's rate) is filled by ``python -m harness.probe``
in a child process, which costs a few seconds the first time and nothing after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from harness.config import BenchConfig, Recipe
from harness.cost import ModelFlops, Probe, RunCost, estimate_seconds, gpu_reference_seconds, run_cost
from harness.errors import HarnessError
from harness.probe import load_probes, machine_rates, probe_key, rate_for


@dataclass(frozen=True)
class Estimate:
    """One run of a recipe: its cost, seconds on this machine, and what those rest on."""

    cost: RunCost
    seconds: float
    basis: str  # "probe" (measured here) or "flops" (its FLOPs at this machine's probed rate)
    gpu_seconds: float  # on the reference GPU, at an assumed rate (harness.cost.GPU_REFERENCE)
    feature_seconds: float = 0.0  # of `seconds`, a frozen backbone's features (first seed only)


def fill_cache(
    config: BenchConfig,
    recipes: list[Recipe],
    *,
    timed: bool,
    precision: str = "float32",
    jit_compile: str = "auto",
    on_done: Callable[[str, bool], None] | None = None,
) -> None:
    """Count FLOPs of (and, if ``timed``, probe) ``recipes`` in a child process. However this
    call ends (an error, Ctrl-C or SIGTERM as KeyboardInterrupt), the child has ended with it."""
    if not recipes:
        return
    request = {
        "config": str(config.path.resolve()),
        "recipes": [r.name for r in recipes],
        "precision": precision,
        "jit_compile": jit_compile,
        "timed": timed,
    }
    process = subprocess.Popen(
        [sys.executable, "-P", "-m", "harness.probe"],  # -P: the working directory is not on sys.path
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        process.stdin.write(json.dumps(request))
        process.stdin.close()
        for line in process.stdout:
            with_result = json.loads(line)
            if on_done:
                on_done(with_result["recipe"], with_result["measured"])
        stderr = process.stderr.read()
        returncode = process.wait()
    finally:
        _end(process)
    if returncode != 0:
        last = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
        raise HarnessError(f"measuring the recipes' cost failed: {last[0]}")


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


def estimate(
    config: BenchConfig,
    recipes: list[Recipe],
    profile: str,
    *,
    precision: str = "float32",
    jit_compile: str = "auto",
    measure: bool = False,
    on_done: Callable[[str, bool], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> list[Estimate]:
    """One ``Estimate`` per recipe under ``profile``. ``measure``: probe every recipe without
    a probe on this machine (slow: seconds to minutes each); otherwise count only the missing
    FLOPs, plus probes of reference recipes if this machine has too few yet. ``on_status`` hears,
    before each such child process starts, what it is about to measure (a status line)."""
    options = {"precision": precision, "jit_compile": jit_compile}
    keys = {r.name: probe_key(config, r, **options) for r in recipes}
    stored = load_probes()
    missing = [r for r in recipes if keys[r.name] not in stored or (measure and not stored[keys[r.name]]["probe"])]
    if missing and on_status:
        what = "timing" if measure else "counting the FLOPs of"
        on_status(f"{MEASURING}: {what} {len(missing)} model{'s' * (len(missing) != 1)} …")
    fill_cache(config, missing, timed=measure, on_done=on_done, **options)
    stored = load_probes()
    if len(machine_rates(stored)) < REFERENCE_PROBES:
        references = _references(recipes, stored, keys)
        if references and on_status:
            on_status(f"{MEASURING}: timing {len(references)} reference model{'s' * (len(references) != 1)} …")
        fill_cache(config, references, timed=True, on_done=on_done, **options)
        stored = load_probes()
    rates = machine_rates(stored)
    estimates = []
    for recipe in recipes:
        entry = stored[keys[recipe.name]]
        head = None if entry.get("head") is None else ModelFlops(**entry["head"])
        cost = run_cost(config, recipe, profile, flops=ModelFlops(**entry["flops"]), head=head)
        probe = None if entry.get("probe") is None else Probe(**entry["probe"])
        rate = rate_for(cost.train_gflops * 1e9, rates)
        features = 0.0
        if probe is not None:
            features = cost.feature_images * probe.feature_seconds_per_image
        elif cost.feature_images:
            features = cost.feature_images * cost.backbone_gflops * 1e9 / rate
        estimates.append(
            Estimate(
                cost=cost,
                seconds=estimate_seconds(cost, probe, rate),
                basis="probe" if probe is not None else "flops",
                gpu_seconds=gpu_reference_seconds(cost),
                feature_seconds=features,
            )
        )
    return estimates
