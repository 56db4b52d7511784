"""What the harness's one ``fit`` call per epoch costs against Keras' single ``fit``. A benchmark, not a test.

    KERAS_BACKEND=tensorflow python benchmarks/epoch_overhead.py [--images 40000] [--epochs 4] [--rounds 2]

The harness trains one epoch per ``fit`` call over that epoch's permutation (``harness.train.RunData``),
so that a run resumed from a checkpoint sees the same batches as one that never stopped. Whatever a
``fit`` call builds once is then built once per epoch. This times it where it shows most: a model
with next to no compute (global average pooling and a softmax), so that an epoch is the input
pipeline, validation and ``fit``'s own work, as for a small CNN on a fast GPU. Both set-ups see
the same random CIFAR-shaped arrays (training and a quarter as many validation images, batch 128,
``harness.train.STEPS_PER_EXECUTION``); printed: each set-up's epochs and its fastest steady epoch
(the first epoch, which traces and compiles, is left out), per round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 128


def model():
    import keras

    from harness.train import STEPS_PER_EXECUTION

    keras.utils.set_random_seed(0)
    built = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")]
    )
    built.compile(
        "adam", "sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION
    )
    return built


def keras_single_fit(arrays, epochs: int) -> list[float]:
    import keras

    x, y, x_validation, y_validation = arrays
    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    model().fit(
        x, y, batch_size=BATCH, epochs=epochs, validation_data=(x_validation, y_validation), shuffle=True, verbose=0,
        callbacks=[Timer()],
    )  # fmt: skip
    return seconds


def harness_fit_per_epoch(arrays, epochs: int) -> list[float]:
    from harness.train import RunData, _once_per_run

    x, y, x_validation, y_validation = arrays
    trained = model()
    data = RunData(x, y, x_validation, y_validation, batch_size=BATCH, seed=0)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40000, help="Training images per epoch.")
    parser.add_argument("--epochs", type=int, default=4, help="Epochs per set-up (the first is left out).")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved repetitions of the two set-ups.")
    args = parser.parse_args()

    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = (
        rng.random((args.images, 32, 32, 3), dtype="float32"),
        rng.integers(0, 10, args.images),
        rng.random((args.images // 4, 32, 32, 3), dtype="float32"),
        rng.integers(0, 10, args.images // 4),
    )
    print(f"Keras {keras.__version__} ({keras.backend.backend()}), {args.images} images, batch {BATCH}")
    for round_number in range(1, args.rounds + 1):
        for name, run in (("keras single fit", keras_single_fit), ("harness fit per epoch", harness_fit_per_epoch)):
            seconds = run(arrays, args.epochs)
            epochs = " ".join(f"{s:.2f}" for s in seconds)
            print(f"round {round_number}  {name:22s} epochs {epochs} s; fastest steady {min(seconds[1:]):.3f} s")


if __name__ == "__main__":
    main()
