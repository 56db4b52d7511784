"""Where the time goes: the harness against bare Keras on this machine. A benchmark, not a test.

    python benchmarks/throughput.py --data ../shared/data/cifar10.npz [--recipes r004-step7 ...]

For each recipe, in one process and on the same images, it times steady-state epochs (the
first epoch of every fit, which traces and compiles, is dropped). The five set-ups run in
interleaved rounds (bare, bare with one step per call, harness, augmented, ImageDataGenerator,
then again), and each figure is the fastest steady epoch over all rounds: on a shared virtual
machine the same epoch can take
up to twice as long from one minute to the next, and the minimum is the estimate least moved by
that. The spread (slowest / fastest steady epoch of one set-up) is printed so the noise is seen.
Each figure is a ratio:

- harness / bare: ``harness.run.train.train_and_evaluate`` against a bare ``model.fit`` of the same
  model, optimizer, batch size, steps per call and validation data (target ≤ 1.05);
- augmented / unaugmented: the harness with the recipe's augmentation preset (or
  ``r004_assumed`` when it has none) against the harness without it (target ≤ 1.3);
- ImageDataGenerator / harness augmentation: a report-style ``ImageDataGenerator(...).flow``
  pipeline against the harness's Keras-layer augmentation with the same settings (target ≥ 3);
- 16 / 1 steps per call: the bare ``model.fit`` with ``steps_per_execution=16`` (what the harness
  compiles with, ``harness.run.train.STEPS_PER_EXECUTION``) against one step per call, Keras'
  default: the per-step Python dispatch that the harness's setting removes (< 1 is faster);
- achieved training FLOP/s (analytic count of Conv2D and Dense multiply-adds: 3× forward for a
  training image, 1× for a validation image) against this machine's float32 matmul peak.

It also times ``bench --help`` and ``bench list`` in fresh processes (target < 1.5 s), and prints
the machine and date. ``--markdown`` prints the table for the README's performance section.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

FALLBACK_PRESET = "r004_assumed"


def forward_flops(model) -> int:
    """Multiply-adds ×2 of every Conv2D and Dense layer (nested models included), per image."""
    import keras

    def walk(container):
        for layer in container.layers:
            yield layer
            if hasattr(layer, "layers"):
                yield from walk(layer)

    total = 0
    for layer in walk(model):
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape  # (None, H, W, C)
            kh, kw = layer.kernel_size
            total += 2 * kh * kw * layer.kernel.shape[2] * out[1] * out[2] * out[3]
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(total)


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 FLOP/s of a size×size matmul through Keras' backend."""
    import keras

    a = keras.ops.convert_to_tensor(np.random.default_rng(0).random((size, size), dtype=np.float32))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, a))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def steady(epoch_seconds: list[float]) -> list[float]:
    """Epoch times without the first (tracing/compilation) epoch."""
    return list(epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds)


def epoch_timer():
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    return Timer()


def architectures_model(recipe):
    import architectures

    return architectures.build(recipe.architecture, **dict(recipe.architecture_options))


def compiled_model(recipe, seed: int, steps_per_execution: int):
    """The recipe's model, seeded and compiled as a bare Keras user would."""
    import keras

    from harness.run.train import make_optimizer

    keras.utils.set_random_seed(seed)
    model = architectures_model(recipe)
    model.compile(
        optimizer=make_optimizer(recipe),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def bare_fit(recipe, split, epochs: int, seed: int, steps_per_execution: int) -> float:
    model = compiled_model(recipe, seed, steps_per_execution)
    timer = epoch_timer()
    model.fit(
        split.x_train,
        split.y_train,
        batch_size=recipe.training.batch_size,
        epochs=epochs,
        validation_data=(split.x_validation, split.y_validation),
        shuffle=True,
        callbacks=[timer],
        verbose=0,
    )
    return steady(timer.seconds)


def idg_fit(recipe, split, preset: dict, epochs: int, seed: int, steps_per_execution: int) -> float:
    """The reports' pipeline: ImageDataGenerator(**preset).flow(x, y) fed to model.fit."""
    import keras

    model = compiled_model(recipe, seed, steps_per_execution)
    # Keras 3 keeps the reports' ImageDataGenerator only as a legacy export.
    legacy = getattr(keras.preprocessing.image, "ImageDataGenerator", None)
    if legacy is None:
        from keras.src.legacy.preprocessing.image import ImageDataGenerator as legacy  # = tf.keras.preprocessing.image
    generator = legacy(**{k: v for k, v in preset.items() if k != "rescale"})
    if any(preset.get(k) for k in ("featurewise_center", "featurewise_std_normalization", "zca_whitening")):
        generator.fit(split.x_train)
    timer = epoch_timer()
    model.fit(
        generator.flow(split.x_train, split.y_train, batch_size=recipe.training.batch_size, seed=seed),
        epochs=epochs,
        validation_data=(split.x_validation, split.y_validation),
        callbacks=[timer],
        verbose=0,
    )
    return steady(timer.seconds)


def harness_fit(recipe, profile, split, preset: dict, seed: int) -> list[float]:
    from harness.run.train import train_and_evaluate

    result = train_and_evaluate(recipe, profile, split, seed=seed, augmentation=preset)
    return steady(result.epoch_seconds)


def cli_seconds(*arguments: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", *arguments], cwd=REPO, capture_output=True, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA"), help="CIFAR-10 (.npz etc.), as for bench.")
    parser.add_argument(
        "--recipes", nargs="+", default=["r004-step7", "r002-proyecto-3"], help="Recipes to time (CNNs)."
    )
    parser.add_argument("--images", type=int, default=5000, help="Training images per epoch.")
    parser.add_argument("--epochs", type=int, default=3, help="Epochs per measurement (the first is dropped).")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Interleaved repetitions of the five set-ups (fastest epoch wins)."
    )
    parser.add_argument("--markdown", action="store_true", help="Print the table as markdown for the README.")
    args = parser.parse_args()

    import keras

    from harness.config import NO_AUGMENTATION, load_config
    from harness.environment import cpu_description
    from harness.run.data import load_cifar10, prepare_split
    from harness.run.train import STEPS_PER_EXECUTION

    config = load_config(REPO / "benchmarks.toml")
    data = load_cifar10(args.data)
    split = prepare_split(
        data,
        validation_size=config.data.validation_size,
        split_seed=config.data.split_seed,
        stratified=config.data.stratified,
        train_size=args.images,
        validation_subset=args.images // 5,
        test_size=1000,
    )
    profile = dataclasses.replace(config.profile("full"), name="throughput", max_epochs=args.epochs)
    peak = matmul_peak()
    rows = []
    for name in args.recipes:
        recipe = config.recipe(name)
        plain = dataclasses.replace(recipe, callbacks=(), augmentation=NO_AUGMENTATION)  # time full epochs only
        preset = config.augmentation(recipe.augmentation) or config.augmentation(FALLBACK_PRESET)
        epochs: dict[str, list[float]] = {"bare": [], "bare_one_step": [], "harness": [], "augmented": [], "idg": []}
        for _ in range(args.rounds):
            epochs["bare"] += bare_fit(plain, split, args.epochs, seed=0, steps_per_execution=STEPS_PER_EXECUTION)
            epochs["bare_one_step"] += bare_fit(plain, split, args.epochs, seed=0, steps_per_execution=1)
            epochs["harness"] += harness_fit(plain, profile, split, {}, seed=0)
            epochs["augmented"] += harness_fit(plain, profile, split, preset, seed=0)
            epochs["idg"] += idg_fit(plain, split, preset, args.epochs, seed=0, steps_per_execution=STEPS_PER_EXECUTION)
        fastest = {key: min(times) for key, times in epochs.items()}
        bare, harness, augmented = fastest["bare"], fastest["harness"], fastest["augmented"]
        spread = max(max(times) / min(times) for times in epochs.values())
        flops = forward_flops(architectures_model(plain))
        work = flops * (3 * len(split.y_train) + len(split.y_validation))
        rows.append(
            {
                "recipe": name,
                "batch": recipe.training.batch_size,
                "bare s/epoch": bare,
                "harness s/epoch": harness,
                "harness / bare": harness / bare,
                f"{STEPS_PER_EXECUTION} / 1 steps per call": bare / fastest["bare_one_step"],
                "augmented / unaugmented": augmented / harness,
                "IDG / harness augmentation": fastest["idg"] / augmented,
                "GFLOP/s": work / harness / 1e9,
                "% of matmul peak": 100 * work / harness / peak,
                "epoch spread": spread,
            }
        )
        steady_epochs = "; ".join(f"{key} " + " ".join(f"{t:.2f}" for t in times) for key, times in epochs.items())
        print(f"{name}: steady epochs (s): {steady_epochs}", file=sys.stderr)
    help_s, list_s = cli_seconds("--help"), cli_seconds("list")
    machine = f"{platform.machine()}, {cpu_description()}, Keras {keras.__version__} ({keras.backend.backend()})"
    when = datetime.date.today().isoformat()
    header = list(rows[0])
    if args.markdown:
        print(
            f"Measured {when} on {machine}; {args.images} training images; {args.rounds} interleaved rounds of"
            f" {args.epochs} epochs per set-up (first epoch of each dropped; fastest steady epoch shown).\n"
        )
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(_cell(row[key]) for key in header) + " |")
        print(f"\nmatmul peak {peak / 1e9:.0f} GFLOP/s; `bench --help` {help_s:.2f} s; `bench list` {list_s:.2f} s.")
    else:
        print(f"{when}, {machine}; matmul peak {peak / 1e9:.0f} GFLOP/s")
        for row in rows:
            print("  ".join(f"{key}={_cell(value)}" for key, value in row.items()))
        print(f"bench --help {help_s:.2f} s; bench list {list_s:.2f} s")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


if __name__ == "__main__":
    main()
