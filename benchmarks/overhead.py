"""Where a sweep's wall time goes, read back from the runs in an MLflow store. A benchmark, not a test.

    python benchmarks/overhead.py [--tracking-uri sqlite:///mlflow.db] [--profile cpu] [--markdown]

Every finished child run logs ``time/train_seconds`` (fit), ``time/evaluation_seconds`` (predict
on the test set) and ``overhead/*_seconds`` (in stores written before the metrics were grouped:
``train_seconds``, ``evaluation_seconds``, ``overhead.*_seconds``; both are read): process start
until the worker reads its spec (startup), importing the harness, Keras and MLflow (import),
opening the tracking store (store), the config, weights check, dataset load and split (data),
seeding/building/compiling (build), and params, final metrics and artifacts (logging). This prints the mean of each per run and its
share of the runs' total wall time (MLflow start to end of each child run), so what costs the
most is one glance away. Runs from before these metrics existed are left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store_args import add_store_options, open_store  # noqa: E402  (benchmarks/, beside this script)

from harness.store.schema import (  # noqa: E402  (after the path is set)
    METRIC_EVALUATION_SECONDS,
    METRIC_TRAIN_SECONDS,
    OVERHEAD_PREFIX,
    TAG_PROFILE,
    metric,
)

PHASES = (
    (METRIC_TRAIN_SECONDS, "fit (training epochs, per-epoch logging)"),
    (METRIC_EVALUATION_SECONDS, "predict on the test set"),
    (f"{OVERHEAD_PREFIX}import_seconds", "import harness, Keras (TF) and MLflow"),
    (f"{OVERHEAD_PREFIX}data_seconds", "config, weights check, dataset load, split"),
    (f"{OVERHEAD_PREFIX}store_seconds", "open the MLflow store"),
    (f"{OVERHEAD_PREFIX}build_seconds", "seed, build, compile"),
    (f"{OVERHEAD_PREFIX}logging_seconds", "params, final metrics, confusion matrix, artifacts"),
    (f"{OVERHEAD_PREFIX}startup_seconds", "start the worker process"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_options(parser)
    parser.add_argument("--markdown", action="store_true", help="Print a markdown table for the README.")
    args = parser.parse_args()

    tracker = open_store(args)
    runs = [
        r
        for r in tracker.child_runs(args.profile)
        if r.info.status == "FINISHED" and metric(r.data.metrics, f"{OVERHEAD_PREFIX}import_seconds") is not None
    ]
    if not runs:
        where = f" of profile {args.profile!r}" if args.profile else ""
        sys.exit(f"no finished runs{where} with overhead metrics in {args.tracking_uri} (older runs lack them)")
    wall = sum((r.info.end_time - r.info.start_time) / 1000 for r in runs)
    rows = []
    for name, meaning in PHASES:
        total = sum(metric(r.data.metrics, name) or 0.0 for r in runs)
        rows.append((name, meaning, total / len(runs), 100 * total / wall))
    accounted = sum(row[3] for row in rows)
    profiles = sorted({r.data.tags.get(TAG_PROFILE, "?") for r in runs})
    head = (
        f"{len(runs)} runs (profile {', '.join(profiles)}), {wall / len(runs):.1f} s of wall time per run; "
        f"the phases below account for {accounted:.0f}% of it."
    )
    if args.markdown:
        print(head + "\n")
        print("| phase | what | s per run | % of wall time |")
        print("|---|---|---|---|")
        for name, meaning, mean, share in rows:
            print(f"| `{name}` | {meaning} | {mean:.2f} | {share:.1f} |")
    else:
        print(head)
        for name, meaning, mean, share in rows:
            print(f"{name:28s} {mean:8.2f} s {share:6.1f} %  {meaning}")


if __name__ == "__main__":
    main()
