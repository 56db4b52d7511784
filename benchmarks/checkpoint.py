"""What a run's per-epoch checkpoint costs, per recipe. A benchmark, not a test.

    python benchmarks/checkpoint.py [--data cifar10.npz] [--recipes r004-step7 r002-proyecto-7] [--markdown]

Each recipe trains ``--epochs`` epochs on ``--images`` training images (enough for EarlyStopping
and keep-best to hold best weights, as in a real run) through ``harness.run.train.train_and_evaluate``,
writing a checkpoint at every epoch's end into a temporary ``$BENCH_CACHE``. Printed per recipe:
parameters, the checkpoint's size, the mean time per checkpoint (capturing the state from the
model, optimizer and callbacks, then writing it with fsync and a rename), the fastest load, and
an epoch of the ``full`` profile as ``bench list --cost`` estimates it here and on the reference
GPU, to compare with. The images only set how long the epochs take, not what a checkpoint holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.cost.run_cost import RUN_OVERHEAD_SECONDS  # noqa: E402  (after the path is set)

REPO = Path(__file__).resolve().parents[1]


def measure(config, recipe, split, epochs: int, folder: Path) -> dict:
    from harness.run import checkpoint
    from harness.run.train import train_and_evaluate

    path = folder / f"{recipe.name}.npz"
    profile = dataclasses.replace(config.profile("smoke"), max_epochs=epochs)
    result = train_and_evaluate(
        recipe,
        profile,
        split,
        seed=0,
        augmentation=config.augmentation(recipe.augmentation),
        on_checkpoint=lambda state: checkpoint.save(path, state),
    )
    loads = []
    for _ in range(3):
        started = time.perf_counter()
        checkpoint.load(path)
        loads.append(time.perf_counter() - started)
    return {
        "params": result.params,
        "megabytes": path.stat().st_size / 1e6,
        "per_checkpoint": result.extra["checkpoint_seconds"] / result.extra["checkpoints"],
        "checkpoints": result.extra["checkpoints"],
        "epochs": result.epochs_run,
        "load": min(loads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA"), help="CIFAR-10 (.npz etc.), as for bench.")
    parser.add_argument("--recipes", nargs="+", default=["r004-step7", "r002-proyecto-7"], help="Recipes to measure.")
    parser.add_argument("--images", type=int, default=1024, help="Training images per epoch.")
    parser.add_argument("--epochs", type=int, default=4, help="Epochs (one checkpoint each).")
    parser.add_argument("--markdown", action="store_true", help="Print a markdown table.")
    args = parser.parse_args()

    from harness.config import load_config
    from harness.cost.estimate import estimate
    from harness.run.data import load_cifar10, prepare_split

    config = load_config(REPO / "benchmarks.toml")
    options = dict(config.split_options("smoke"))
    options["train_size"] = args.images
    split = prepare_split(load_cifar10(args.data), **options)
    recipes = [config.recipe(name) for name in args.recipes]
    full = {e.cost.recipe: e for e in estimate(config, recipes, "full")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as scratch:
        os.environ["BENCH_CACHE"] = scratch
        for recipe in recipes:
            found = measure(config, recipe, split, args.epochs, Path(scratch))
            e = full[recipe.name]
            here = (e.seconds - RUN_OVERHEAD_SECONDS) / e.cost.epochs
            gpu = (e.gpu_seconds - RUN_OVERHEAD_SECONDS) / e.cost.epochs
            rows.append((recipe.name, found, here, gpu))
    if args.markdown:
        print(
            "| recipe | params | checkpoint | per checkpoint | load | a `full` epoch, estimated here / on the reference GPU |"
        )
        print("|---|---|---|---|---|---|")
    for name, found, here, gpu in rows:
        cells = (
            name,
            f"{found['params']:,}",
            f"{found['megabytes']:.1f} MB",
            f"{found['per_checkpoint']:.2f} s",
            f"{found['load']:.2f} s",
            f"{here:.0f} s / {gpu:.1f} s",
        )
        print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(cells))
    print(
        f"({args.epochs} epochs of {args.images} images each, {rows[0][1]['checkpoints']} checkpoints for "
        f"{rows[0][0]}; capture + write with fsync; load = fastest of 3)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
