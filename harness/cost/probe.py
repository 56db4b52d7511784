"""Measure what a recipe costs on this machine: build its model as a run does, time training
and prediction steps at its batch size until the timing is steady, and keep the result
(``harness.cost.run_cost``).

A probe trains on random CIFAR-shaped images, with random backbone weights for transfer
recipes: timing does not depend on the values. Steady means: after a call that compiles, each
timed call runs enough steps to last ``PROBE_SECONDS`` (at least ``PROBE_MIN_STEPS``, as many as
``PROBE_MAX_BYTES`` of input allow), and the fastest of ``PROBE_REPEATS`` calls counts. A probe
of 3 steps was one call's dispatch and an epoch's set-up spread over 3 steps: on a GPU, where a
small CNN's step is about 1.5 ms (results/gpu), that overstates a run many times over.

Results are cached per (model, batch, augmentation, precision, XLA, backend, hardware, library
versions, ``COST_MODEL``) in ``$BENCH_CACHE/probes.json``, so a sweep can print its cost at once;
``bench list --cost`` measures the recipes not cached yet. The fastest call guards against a
moment's load, not minutes of it (a pip install beside a probe left one 3.4× slow in the cache):
each probe also records the share of the CPUs other work held while it was timed
(``Probe.others_cpu``), and one over ``BUSY`` is timed again by the next estimate made while the
machine is quiet (``harness.cost.estimate``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from harness.config import BenchConfig, Recipe
from harness.cost.run_cost import ModelFlops, Probe, model_flops
from harness.identity import is_transfer

PROBE_MIN_STEPS = 2  # training steps per call at the least (a 224x224 VGG16 step takes a minute on a CPU)
# ...and more, up to what the input allows, until one timed call lasts this long: 2 s, or
# $BENCH_PROBE_SECONDS (the tests' 0.2: quicker, noisier estimates; they never check one's accuracy).
PROBE_SECONDS = float(os.environ.get("BENCH_PROBE_SECONDS") or 2.0)
PROBE_MAX_BYTES = 512 * 2**20  # the most input a probe holds in memory (images, or a frozen backbone's features)
PROBE_REPEATS = 3  # timed calls after the one that compiles; the fastest counts
# Part of every probe's key: probes of an older model are remeasured (1: 3 steps, no activations;
# 2: no record of the other work that ran meanwhile, so one slowed by it could not be told apart).
COST_MODEL = 3


def probes_path() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "cifar10-bench")) / "probes.json"


@functools.lru_cache(maxsize=1)
def machine_words() -> dict[str, str]:
    """This machine as a probe's timing depends on it, found without importing Keras: the
    hardware in words (GPUs by name from the driver, else the CPU), the backend, the versions."""
    from importlib import metadata

    from harness.environment import cpu_description
    from harness.run.devices import keras_backend, visible_gpus

    gpus = visible_gpus()
    backend = keras_backend()
    versions = {"keras_backend": backend}
    for package in ("keras", backend):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[f"version.{package}"] = metadata.version(package)
    hardware = ", ".join(gpu.name for gpu in gpus) + " + " if gpus else "CPU only: "
    return {"hardware": hardware + cpu_description(), **versions}


def probe_key(config: BenchConfig, recipe: Recipe, *, precision: str = "float32", jit_compile: str = "auto") -> str:
    """What a probe's timing depends on: the model, batch, augmentation and loss, how it is
    compiled, and where (``machine_words``)."""
    machine = machine_words()
    facts = {
        "architecture": recipe.architecture,
        "options": dict(recipe.architecture_options),
        "batch_size": recipe.training.batch_size,
        "loss": recipe.training.loss,
        "augmentation": config.augmentation(recipe.augmentation),
        "precision": precision,
        "jit_compile": jit_compile,
        "cost_model": COST_MODEL,
        **machine,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def load_probes() -> dict[str, dict]:
    try:
        return json.loads(probes_path().read_text())
    except (OSError, ValueError):
        return {}


def probe_entry(probe: Probe | None, flops: ModelFlops, head: ModelFlops | None) -> dict:
    """One cache entry: the FLOPs of a recipe's model, its head's, and its probe when one was
    measured."""
    return {
        "probe": None if probe is None else asdict(probe),
        "flops": asdict(flops),
        "head": None if head is None else asdict(head),
        "hardware": machine_words()["hardware"],
        "cost_model": COST_MODEL,
    }


def save_probe(key: str, entry: dict) -> None:
    """Add one entry to the cache file, atomically (a reader never sees half a file) and under a
    file lock (two processes probing at once each add their entry; neither's is lost)."""
    from harness.locking import exclusive_lock

    path = probes_path()
    with contextlib.suppress(OSError):  # an unwritable cache only means measuring again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(path.with_name(path.name + ".lock")):
            stored = load_probes()
            stored[key] = entry
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".json.partial")
            with os.fdopen(handle, "w") as stream:
                json.dump(stored, stream, indent=1, sort_keys=True)
            os.replace(temporary, path)


def machine_rates(stored: dict[str, dict]) -> list[tuple[float, Probe]]:
    """(training FLOPs per image, its probe) of every probe measured on this machine, by FLOPs:
    the FLOP rate a probe reached (``Probe.flops_per_second``) depends on the model's size, a small
    model keeping a device further from its peak than a large one. Probes that other work slowed
    (``Probe.contended``) count only where no other was measured; those of an older ``COST_MODEL``
    not at all."""
    here = machine_words()["hardware"]
    probes = [
        (e, Probe(**e["probe"]))
        for e in stored.values()
        if e.get("probe") and e.get("hardware") == here and e.get("cost_model") == COST_MODEL
    ]
    quiet = [(e, probe) for e, probe in probes if not probe.contended]
    return sorted(
        ((float(e["head"]["train"] if e.get("head") else e["flops"]["train"]), probe) for e, probe in quiet or probes),
        key=lambda pair: pair[0],
    )


def contended(entry: dict | None) -> bool:
    """Whether a cache entry holds a probe that other work on the machine slowed."""
    return bool(entry and entry.get("probe") and Probe(**entry["probe"]).contended)


def rate_for(train_flops: float, rates: list[tuple[float, Probe]]) -> Probe:
    """The probe of the model nearest in size (log scale) to one of ``train_flops``: its FLOP
    rate stands in for that model's."""
    return min(rates, key=lambda r: abs(math.log(max(r[0], 1.0)) - math.log(max(train_flops, 1.0))))[1]


def _seconds_per_image(run, images: int, repeats: int = PROBE_REPEATS, *, warm: bool = False) -> float:
    """Seconds per image of ``run`` (which handles ``images`` images): the fastest of ``repeats``
    timed calls, after one untimed call that compiles unless ``warm``. The fastest, because a
    probe is cached for every later estimate and a busy moment on a shared machine only ever slows
    a call down (the whole job's estimate read 7× longer here from probes timed once while other
    jobs held both cores)."""
    if not warm:
        run()  # compile / warm up
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest / images


def _timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def steady_steps(step_seconds: float, batch: int, bytes_per_row: int) -> int:
    """Training steps per timed call: enough to last ``PROBE_SECONDS`` at ``step_seconds`` a step,
    at least ``PROBE_MIN_STEPS``, in whole calls into the compiled step (``STEPS_PER_EXECUTION``)
    past one, and never more than ``PROBE_MAX_BYTES`` of input."""
    from harness.run.train import STEPS_PER_EXECUTION

    wanted = max(PROBE_MIN_STEPS, math.ceil(PROBE_SECONDS / max(step_seconds, 1e-6)))
    if wanted > STEPS_PER_EXECUTION:
        wanted = STEPS_PER_EXECUTION * math.ceil(wanted / STEPS_PER_EXECUTION)
    fits = max(PROBE_MIN_STEPS, PROBE_MAX_BYTES // max(batch * bytes_per_row, 1))
    steps = min(wanted, fits)
    return int(STEPS_PER_EXECUTION * (steps // STEPS_PER_EXECUTION) if steps > STEPS_PER_EXECUTION else steps)


def measure(
    config: BenchConfig, recipe: Recipe, *, precision: str = "float32", jit_compile: str = "auto", timed: bool = True
) -> tuple[Probe | None, ModelFlops, ModelFlops | None]:
    """Build ``recipe``'s model as a run would and time it: (probe, FLOPs of the whole model,
    FLOPs of the head that trains on cached features, or None). ``timed=False``: FLOPs only."""
    import keras

    from harness.environment import OthersCpu, accelerator_names
    from harness.run.devices import TF32, keras_dtype_policy, resolve_jit_compile, set_tf32
    from harness.run.features import FEATURE_BATCH
    from harness.run.train import STEPS_PER_EXECUTION, assemble, make_optimizer

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(keras_dtype_policy(precision))
    backend = keras.backend.backend()
    restore_tf32 = set_tf32(backend, precision == TF32)  # as a run of this precision computes
    try:
        xla = resolve_jit_compile(jit_compile, backend=backend, accelerator=bool(accelerator_names(backend)))
        batch = recipe.training.batch_size
        rng = np.random.default_rng(0)
        images = rng.random((batch * PROBE_MIN_STEPS, 32, 32, 3), dtype=np.float32)
        built = assemble(
            recipe,
            seed=0,
            augmentation=config.augmentation(recipe.augmentation),
            x_train=images,
            xla=xla,
            build_kwargs={"weights": None} if is_transfer(recipe) else None,
        )
        head = None
        feature_seconds = 0.0
        if built.backbone is not None:
            whole = model_flops(built.backbone)
            head = model_flops(built.model)
            flops = ModelFlops(
                forward=whole.forward + head.forward,
                train=whole.forward + head.train,
                forward_activations=whole.forward_activations + head.forward_activations,
                train_activations=whole.forward_activations + head.train_activations,
            )
            if not timed:
                return None, flops, head
            feature_batch = min(len(images), FEATURE_BATCH)
            feature_seconds = _seconds_per_image(
                lambda: built.backbone.predict(images[:feature_batch], batch_size=feature_batch, verbose=0),
                feature_batch,
            )
            inputs = np.asarray(built.backbone.predict(images, batch_size=FEATURE_BATCH, verbose=0))
        else:
            flops = model_flops(built.model)
            if not timed:
                return None, flops, head
            inputs = images

        def labels(count: int):
            classes = np.arange(count) % 10
            return (
                keras.utils.to_categorical(classes, 10)
                if recipe.training.loss == "categorical_crossentropy"
                else classes
            )

        model = built.model
        model.compile(
            optimizer=make_optimizer(recipe),
            loss=recipe.training.loss,
            metrics=["accuracy"],
            jit_compile=xla,
            steps_per_execution=STEPS_PER_EXECUTION,
        )

        def fit(x, y):
            return lambda: model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)

        def predict(x):
            return lambda: model.predict(x, batch_size=batch, verbose=0)  # validation runs at the training batch

        few = labels(len(inputs))
        first_fit = _timed(fit(inputs, few))  # compiles
        short_fit = _timed(fit(inputs, few))
        first_predict = _timed(predict(inputs))  # compiles
        short_predict = _timed(predict(inputs))
        steps = steady_steps(short_fit / PROBE_MIN_STEPS, batch, inputs[0].nbytes)
        x = np.resize(inputs, (batch * steps, *inputs.shape[1:]))  # rows repeated: timing does not depend on values
        others = OthersCpu()
        train = _seconds_per_image(fit(x, labels(len(x))), len(x), warm=True)
        inference = _seconds_per_image(predict(x), len(x), warm=True)
        others_cpu = others.share()
        trained_flops = head.train if head is not None else flops.train
        probe = Probe(
            train_seconds_per_image=train,
            predict_seconds_per_image=inference,
            feature_seconds_per_image=feature_seconds,
            flops_per_second=trained_flops / train if train else 0.0,
            compile_seconds=max(first_fit - short_fit, 0.0) + max(first_predict - short_predict, 0.0),
            others_cpu=others_cpu,
        )
        return probe, flops, head
    finally:
        keras.mixed_precision.set_global_policy(previous)
        restore_tf32()


def main() -> int:
    """``python -m harness.cost.probe``: a JSON request on stdin ({config, recipes, keys,
    precision, jit_compile, timed}) fills the cache for those recipes, each under the key the
    caller gave (its own ``probe_key`` where none is given); one line of JSON per recipe done on
    stdout, with its cache key and entry (the parent uses them even where the cache cannot be
    written). Run apart from the sweep process so that it never imports a backend."""
    from harness.config import load_config
    from harness.environment import import_keras_quietly

    request = json.loads(sys.stdin.read())
    import_keras_quietly()
    config = load_config(request["config"])
    for name in request["recipes"]:
        recipe = config.recipe(name)
        options = {"precision": request.get("precision", "float32"), "jit_compile": request.get("jit_compile", "auto")}
        try:
            probe, flops, head = measure(config, recipe, timed=request.get("timed", True), **options)
        except Exception as error:  # noqa: BLE001  the sweep shows stderr's last line: it names the recipe
            first = (str(error).strip().splitlines() or [""])[0][:300]
            print(f"recipe {name}: {type(error).__name__}: {first}", file=sys.stderr, flush=True)
            return 1
        key = request.get("keys", {}).get(name) or probe_key(config, recipe, **options)
        entry = probe_entry(probe, flops, head)
        save_probe(key, entry)
        print(json.dumps({"recipe": name, "measured": probe is not None, "key": key, "entry": entry}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
