"""The time between a run's epochs that no epoch accounts for, and the other work that shared its
CPUs, read back from the child runs in an MLflow store. A benchmark, not a test.

    python benchmarks/epoch_gaps.py [--tracking-uri sqlite:///mlflow.db] [--profile full] [--recipe r004-step7] [--markdown]

Each epoch's metrics are logged when it ends, so the time from one epoch's log to the next is that
epoch's ``time/epoch_seconds`` plus whatever ran between them: the run's checkpoint, its per-epoch
logging and the end of Keras' ``fit`` call, and before commit a67f8e3, tf.data's autotuning thread,
joined when each epoch's iterator was destroyed (up to 40 s with the CPU idle). Intervals across a
restart (a resumed run: its restored epochs are logged at once, then minutes pass) are left out:
one that is shorter than its epoch, or longer by over ``--restart`` seconds. Per run: the
intervals measured, how many gaps exceed ``--over`` seconds, the gaps' total and share of the
intervals, and ``time/others_cpu`` (other work's share of the CPUs, where the run recorded it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store_args import add_store_options, open_store  # noqa: E402  (benchmarks/, beside this script)

from harness.store.schema import (  # noqa: E402  (after the path is set)
    EPOCH_METRICS,
    METRIC_OTHERS_CPU,
    PARAM_COMMIT,
    TAG_RECIPE,
    TAG_SEED,
    metric,
)

EPOCH_SECONDS = EPOCH_METRICS["epoch_seconds"]


def gaps(points: list, *, restart: float) -> list[tuple[float, float]]:
    """(gap, epoch seconds) for each pair of consecutive epoch logs: the seconds between them
    beyond the later epoch's own time, from ``time/epoch_seconds`` points (step = epoch,
    timestamp in ms), restarts left out."""
    ordered = sorted(points, key=lambda m: m.step)
    found = []
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.step != before.step + 1:
            continue
        gap = (after.timestamp - before.timestamp) / 1000 - after.value
        if -1.0 <= gap <= restart:  # shorter than the epoch: restored at once; far longer: a restart
            found.append((max(gap, 0.0), after.value))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_options(parser)
    parser.add_argument("--recipe", action="append", help="Only runs of this recipe (repeatable).")
    parser.add_argument("--over", type=float, default=5.0, help="A gap counts as long above this many seconds (5).")
    parser.add_argument(
        "--restart", type=float, default=120.0, help="An interval longer than its epoch by more is a restart (120)."
    )
    parser.add_argument("--markdown", action="store_true", help="Print a markdown table.")
    args = parser.parse_args()

    tracker = open_store(args)
    rows = []
    for run in tracker.child_runs(args.profile):
        recipe = run.data.tags.get(TAG_RECIPE, "?")
        if args.recipe and recipe not in args.recipe:
            continue
        points = tracker.client.get_metric_history(run.info.run_id, EPOCH_SECONDS)
        found = gaps(points, restart=args.restart)
        if not found:
            continue
        lost = [gap for gap, _ in found]
        others = metric(run.data.metrics, METRIC_OTHERS_CPU)
        rows.append(
            (
                f"{recipe} seed {run.data.tags.get(TAG_SEED, '?')}",
                run.data.params.get(PARAM_COMMIT, "?"),
                run.info.status,
                len(found),
                sum(1 for gap in lost if gap > args.over),
                sum(lost),
                100 * sum(lost) / sum(gap + epoch for gap, epoch in found),
                statistics.median(lost),
                "–" if others is None else f"{others:.2f}",
            )
        )
    if not rows:
        sys.exit(f"no child run with consecutive epoch logs in {args.tracking_uri}")
    header = ("run", "commit", "status", "intervals", f"gaps > {args.over:g} s", "gap s", "% of interval time")
    header += ("median gap s", "others' CPU")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    else:
        print("  ".join(header))
    for row in sorted(rows):
        cells = [*row[:5], f"{row[5]:.0f}", f"{row[6]:.0f}", f"{row[7]:.1f}", row[8]]
        print(("| " + " | ".join(map(str, cells)) + " |") if args.markdown else "  ".join(map(str, cells)))


if __name__ == "__main__":
    main()
