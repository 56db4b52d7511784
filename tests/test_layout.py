"""Stores written before metrics were grouped and settings became params still read back the same.

A long sweep logged with the old layout (``test_accuracy``, ``params`` as a metric,
``overhead.import_seconds`` …) must rank, plot and time exactly as one logged with the new one.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.identity import RunIdentity
from harness.results.leaderboard import collect_rows
from harness.results.publish import publish_board_metrics
from harness.store.tracking import Tracker
from tests.conftest import REPO

OLD_LAYOUT = {  # what a child of the same run logged before
    "metrics": {
        "test_accuracy": 0.61,
        "test_loss": 1.1,
        "params": 92074,
        "trainable_params": 92074,
        "evaluation_batch": 1024,
        "jit_compile": 1,
        "train_seconds": 30.0,
        "evaluation_seconds": 1.0,
        "images_per_second": 1500.0,
        "epochs_run": 3,
        "overhead.startup_seconds": 0.5,
        "overhead.import_seconds": 4.0,
        "overhead.store_seconds": 0.2,
        "overhead.data_seconds": 1.0,
        "overhead.build_seconds": 0.3,
        "overhead.logging_seconds": 0.4,
    },
    "params": {},
    "curve": "val_loss",
}
NEW_LAYOUT = {
    "metrics": {
        "accuracy/test": 0.63,
        "loss/test": 1.0,
        "time/train_seconds": 34.0,
        "time/evaluation_seconds": 1.0,
        "time/images_per_second": 1300.0,
        "training/epochs_run": 3,
        "overhead/startup_seconds": 0.5,
        "overhead/import_seconds": 6.0,
        "overhead/store_seconds": 0.2,
        "overhead/data_seconds": 1.0,
        "overhead/build_seconds": 0.3,
        "overhead/logging_seconds": 0.4,
    },
    "params": {"model.params": "92074", "evaluation.batch_size": "1024", "jit_compile.resolved": "on"},
    "curve": "loss/validation",
}


def _store(tmp_path, layouts: list[dict]) -> Tracker:
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for seed, layout in enumerate(layouts):
        identity = RunIdentity(
            recipe="tiny-a", profile="smoke", seed=seed, config_hash="abc", data_fingerprint="fp", report="r.txt"
        )
        parent = tracker.parent_run(identity, description="baseline")
        child = tracker.child_run(identity, parent)
        tracker.log_metrics(child, layout["metrics"])
        for epoch, value in enumerate((2.0, 1.5, 1.2), start=1):
            tracker.log_metrics(child, {layout["curve"]: value}, step=epoch)
        tracker.log_params(child, {"reported.test_accuracy": "0.62", **layout["params"]})
        tracker.finish(child)
    return tracker


def test_leaderboard_pools_old_and_new_layouts(tmp_path):
    tracker = _store(tmp_path, [OLD_LAYOUT, NEW_LAYOUT])
    [row] = collect_rows(tracker, profile="smoke")
    assert row.n == 2 and row.values == [0.61, 0.63]
    assert row.mean == pytest.approx(0.62)
    assert row.params == 92074
    assert row.train_seconds == pytest.approx(32.0) and row.images_per_second == pytest.approx(1400.0)
    assert row.epochs_run == 3


@pytest.mark.parametrize("layout", [OLD_LAYOUT, NEW_LAYOUT], ids=["old", "new"])
def test_learning_curves_and_parent_aggregates_read_either_layout(tmp_path, layout):
    tracker = _store(tmp_path, [layout])
    [child] = tracker.child_runs("smoke")
    assert tracker.metric_history(child.info.run_id, "loss/validation") == [2.0, 1.5, 1.2]
    parent = child.data.tags["mlflow.parentRunId"]
    assert tracker.update_parent(parent, child.data.tags["bench.group"]) == "FINISHED"
    publish_board_metrics(tracker, collect_rows(tracker, profile="smoke"))
    figures = tracker.get_run(parent).data.metrics
    assert figures["board/3_n"] == 1 and figures["board/1_mean"] == layout["metrics"].get(
        "test_accuracy", layout["metrics"].get("accuracy/test")
    )


def test_overhead_benchmark_reads_old_and_new_names(tmp_path):
    _store(tmp_path, [OLD_LAYOUT, NEW_LAYOUT])
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "overhead.py"), "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2 runs (profile smoke)")
    lines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert lines["overhead/import_seconds"] == "5.00"  # (4 + 6) / 2: both layouts counted
    assert lines["time/train_seconds"] == "32.00"
