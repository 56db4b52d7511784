"""What the harness's one ``fit`` call per epoch costs against Keras' single ``fit``. A benchmark, not a test.

    KERAS_BACKEND=tensorflow python benchmarks/epoch_overhead.py [--images 40000] [--epochs 4] [--rounds 2]
    python benchmarks/epoch_overhead.py --recipe r004-step1 --data ../shared/data/cifar10.npz --images 20000

The harness trains one epoch per ``fit`` call over that epoch's permutation (``harness.run.train.RunData``),
so that a run resumed from a checkpoint sees the same batches as one that never stopped. Whatever a
``fit`` call builds once is then built once per epoch. By default this times it where it shows most:
a model with next to no compute (global average pooling and a softmax) on random CIFAR-shaped
arrays, so that an epoch is the input pipeline, validation and ``fit``'s own work, as for a small
CNN on a fast GPU. With ``--recipe`` it times that recipe's model, optimizer and loss instead, and
with ``--data`` real CIFAR-10 images (the first ``--images`` of the training split of
benchmarks.toml). Both set-ups see the same arrays (training and a quarter as many validation
images, the recipe's batch or 128, ``harness.run.train.STEPS_PER_EXECUTION``): Keras' single ``fit`` with
``shuffle=True`` (epoch time from its callbacks) against one ``fit`` call per epoch over
``RunData`` (the whole call timed). Printed: each set-up's epochs and its fastest steady epoch
(the first epoch, which traces and compiles, is left out), per round, then the ratio of the
fastest steady epochs over all rounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 128


def model(recipe=None):
    """The recipe's model compiled as the harness compiles it, or the near-empty model."""
    import keras

    from harness.run.train import STEPS_PER_EXECUTION, make_optimizer

    keras.utils.set_random_seed(0)
    if recipe is None:
        built = keras.Sequential(
            [
                keras.Input((32, 32, 3)),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        optimizer, loss = "adam", "sparse_categorical_crossentropy"
    else:
        import architectures

        built = architectures.build(recipe.architecture, **dict(recipe.architecture_options))
        optimizer, loss = make_optimizer(recipe), recipe.training.loss
    built.compile(optimizer, loss, metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION)
    return built


def keras_single_fit(arrays, epochs: int, recipe, batch: int) -> list[float]:
    import keras

    x, y, x_validation, y_validation = arrays
    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    model(recipe).fit(
        x, y, batch_size=batch, epochs=epochs, validation_data=(x_validation, y_validation), shuffle=True, verbose=0,
        callbacks=[Timer()],
    )  # fmt: skip
    return seconds


def harness_fit_per_epoch(arrays, epochs: int, recipe, batch: int) -> list[float]:
    from harness.run.train import RunData, _once_per_run

    x, y, x_validation, y_validation = arrays
    trained = model(recipe)
    data = RunData(x, y, x_validation, y_validation, batch_size=batch, seed=0)
    callbacks = _once_per_run([], trained)
    seconds = []
    for epoch in range(epochs):
        started = time.perf_counter()
        trained.fit(
            data.epoch(epoch), epochs=epoch + 1, initial_epoch=epoch, validation_data=data.validation, shuffle=False,
            verbose=0, callbacks=callbacks,
        )  # fmt: skip
        seconds.append(time.perf_counter() - started)
    return seconds


def arrays_from(path: str | None, images: int, one_hot: bool):
    """(x, y, x_validation, y_validation): real images from ``path``, or random ones."""
    import numpy as np

    if path is None:
        rng = np.random.default_rng(0)
        x, y = rng.random((images, 32, 32, 3), dtype="float32"), rng.integers(0, 10, images)
        x_validation = rng.random((images // 4, 32, 32, 3), dtype="float32")
        y_validation = rng.integers(0, 10, images // 4)
    else:
        from harness.config import load_config
        from harness.run.data import load_cifar10, prepare_split

        data = load_config(REPO / "benchmarks.toml").data
        split = prepare_split(
            load_cifar10(path),
            validation_size=data.validation_size,
            split_seed=data.split_seed,
            stratified=data.stratified,
            train_size=images,
            validation_subset=images // 4,
            test_size=1000,
        )
        x, y, x_validation, y_validation = split.x_train, split.y_train, split.x_validation, split.y_validation
    if one_hot:
        import keras

        y, y_validation = keras.utils.to_categorical(y, 10), keras.utils.to_categorical(y_validation, 10)
    return x, y, x_validation, y_validation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40000, help="Training images per epoch.")
    parser.add_argument("--epochs", type=int, default=4, help="Epochs per set-up (the first is left out).")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved repetitions of the two set-ups.")
    parser.add_argument(
        "--recipe", help="Time this recipe's model, optimizer, loss and batch (default: a near-empty model)."
    )
    parser.add_argument("--data", help="CIFAR-10 (.npz etc.), as for bench (default: random CIFAR-shaped arrays).")
    args = parser.parse_args()

    import keras

    from harness.config import load_config
    from harness.environment import cpu_description

    recipe = load_config(REPO / "benchmarks.toml").recipe(args.recipe) if args.recipe else None
    batch = recipe.training.batch_size if recipe else BATCH
    one_hot = recipe is not None and recipe.training.loss == "categorical_crossentropy"
    arrays = arrays_from(args.data, args.images, one_hot)
    source = "CIFAR-10 images" if args.data else "random arrays"
    print(
        f"Keras {keras.__version__} ({keras.backend.backend()}), {cpu_description()}; {args.recipe or 'near-empty model'},"
        f" {len(arrays[1])} {source} ({len(arrays[3])} validation), batch {batch}"
    )
    fastest = {"keras single fit": float("inf"), "harness fit per epoch": float("inf")}
    for round_number in range(1, args.rounds + 1):
        for name, run in (("keras single fit", keras_single_fit), ("harness fit per epoch", harness_fit_per_epoch)):
            seconds = run(arrays, args.epochs, recipe, batch)
            fastest[name] = min(fastest[name], *seconds[1:])
            epochs = " ".join(f"{s:.2f}" for s in seconds)
            print(f"round {round_number}  {name:22s} epochs {epochs} s; fastest steady {min(seconds[1:]):.3f} s")
    keras_s, harness_s = fastest.values()
    print(
        f"fastest steady epoch: keras {keras_s:.3f} s, harness {harness_s:.3f} s, harness / keras {harness_s / keras_s:.3f}"
    )


if __name__ == "__main__":
    main()
