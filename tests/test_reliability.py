"""Failures stay local and interrupted sweeps resume: real processes, real signals, real sqlite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TEST_CONFIG

# Long enough (30 epochs of 200 images) that a signal lands mid-training.
LONG_PROFILE = TEST_CONFIG.replace("max_epochs = 1", "max_epochs = 30")


def start_sweep(tmp_path: Path, data: Path, *extra: str) -> subprocess.Popen:
    config = tmp_path / "benchmarks.toml"
    config.write_text(LONG_PROFILE)
    command = [sys.executable, "-m", "harness.cli", "--config", str(config), "--data", str(data)]
    log = open(tmp_path / "sweep.log", "w")  # noqa: SIM115  closed when the process ends
    return subprocess.Popen(
        [*command, "all", "--profile", "smoke", "--seeds", "1", *extra],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(sweep: subprocess.Popen, tmp_path: Path, timeout: float) -> str:
    sweep.wait(timeout=timeout)
    return (tmp_path / "sweep.log").read_text()


def runs(tmp_path: Path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def wait_for_training(tmp_path: Path, timeout: float = 120) -> None:
    """Until some child run has logged its first epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Open the store only once bench has created it (it prints this line right after).
        if "Checking the dataset" in (tmp_path / "sweep.log").read_text():
            for run in runs(tmp_path):
                if run.data.tags.get("bench.kind") == "child" and "val_loss" in run.data.metrics:
                    return
        time.sleep(0.5)
    raise AssertionError("no run started training")


def worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children]


def children_by_status(tmp_path: Path) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for run in runs(tmp_path):
        if run.data.tags.get("bench.kind") == "child":
            grouped.setdefault(run.info.status, []).append(run.data.tags["bench.recipe"])
    return grouped


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs Linux /proc to find the worker")
def test_kill_9_of_a_worker_fails_that_run_only(tmp_path, synthetic_npz):
    sweep = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-a")
    wait_for_training(tmp_path)
    os.kill(worker_pids(sweep.pid)[0], signal.SIGKILL)
    output = finish(sweep, tmp_path, 120)
    assert sweep.returncode == 1, output
    assert "worker process died from SIGKILL" in output
    [failed] = [r for r in runs(tmp_path) if r.info.status == "FAILED"]
    assert "SIGKILL" in failed.data.tags["bench.error"]


def test_sigterm_marks_the_run_killed_and_a_rerun_resumes(tmp_path, synthetic_npz):
    sweep = start_sweep(tmp_path, synthetic_npz)
    wait_for_training(tmp_path)
    sweep.send_signal(signal.SIGTERM)
    output = finish(sweep, tmp_path, 120)
    assert sweep.returncode == 130, output
    assert "rerun the same command" in output
    assert children_by_status(tmp_path) == {"KILLED": ["tiny-a"]}
    parents = [r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "parent"]
    assert [p.info.status for p in parents] == ["FINISHED"]  # not left RUNNING

    rerun = start_sweep(tmp_path, synthetic_npz)
    output = finish(rerun, tmp_path, 300)
    assert rerun.returncode == 0, output
    statuses = children_by_status(tmp_path)
    assert sorted(statuses["FINISHED"]) == ["tiny-a", "tiny-b"]  # exactly one FINISHED per identity
    assert statuses["KILLED"] == ["tiny-a"]
