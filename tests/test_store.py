"""The MLflow store across processes: creation, claims, and what survives a store failure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.tracking import Tracker

pytestmark = pytest.mark.slow  # real processes

OPEN_STORE = """
import sys
from harness.tracking import Tracker
print(Tracker(sys.argv[1]).experiment_id)
"""


def test_concurrent_first_commands_leave_a_usable_store(tmp_path):
    """Five processes open a fresh sqlite store at once. Without the lock beside it, MLflow's
    schema creation races: every try here failed (alembic "Online migration expected to match
    one row", sqlite errors). With it: all succeed, one experiment, and the store is usable."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_STORE, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(5)
    ]
    results = [(p.communicate(timeout=120), p.returncode) for p in processes]
    assert [code for _, code in results] == [0] * 5, [err[-300:] for (_, err), _ in results]
    assert len({out.strip() for (out, _), _ in results}) == 1
    from harness.tracking import Tracker

    tracker = Tracker(uri)
    assert tracker.search("") == []


def sweep_command(tmp_path, data, config, *extra, store=None):
    store = store or f"sqlite:///{tmp_path / 'mlflow.db'}"
    bench = str(__import__("pathlib").Path(sys.executable).with_name("bench"))
    return [bench, "--config", str(config), "--data", str(data), "--tracking-uri", store, *extra]


def children(store: str):
    from harness.tracking import Tracker

    return [r for r in Tracker(store).search("tags.`bench.kind` = 'child'")]


def test_two_commands_at_once_train_each_identity_once(tmp_path, synthetic_npz, test_config):
    """Two `bench run` on one store with the same seeds: each identity is claimed in the store,
    so exactly one FINISHED run per (recipe, seed), and the leaderboard counts each seed once."""
    import json

    command = sweep_command(tmp_path, synthetic_npz, test_config, "run", "tiny-a", "--profile", "smoke", "--seeds", "3")
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = [first.communicate(timeout=600)[0], second.communicate(timeout=600)[0]]
    assert first.returncode == 0 and second.returncode == 0, outputs
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    finished = [r for r in children(store) if r.info.status == "FINISHED"]
    assert sorted(r.data.tags["bench.seed"] for r in finished) == ["0", "1", "2"]
    assert not [r for r in children(store) if r.info.status == "RUNNING"]
    board = subprocess.run(
        [
            *sweep_command(tmp_path, synthetic_npz, test_config, store=store),
            "leaderboard",
            "--profile",
            "smoke",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert [row["n"] for row in json.loads(board.stdout)] == [3]


def test_a_store_failure_stops_new_runs_in_one_line(tmp_path, synthetic_npz, test_config, monkeypatch):
    """The store refuses to create a run (fault injected): no traceback, no new run started,
    one line saying why and how to resume, exit 1; the rerun trains what is missing."""
    from click.testing import CliRunner

    from harness.cli import main
    from harness.tracking import Tracker

    calls = []
    real_claim = Tracker.claim

    def failing_claim(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("disk I/O error (injected)")
        return real_claim(self, *args, **kwargs)

    monkeypatch.setattr(Tracker, "claim", failing_claim)
    monkeypatch.chdir(tmp_path)
    base = ["--config", str(test_config), "--data", str(synthetic_npz)]
    result = CliRunner().invoke(main, [*base, "all", "--profile", "smoke", "--seeds", "2"])
    assert result.exit_code == 1, result.output
    assert "STOPPED the tracking store failed to claim the run: OSError: disk I/O error (injected)" in result.output
    assert "Traceback" not in result.output and len(calls) == 2  # nothing started after the failure
    monkeypatch.setattr(Tracker, "claim", real_claim)
    rerun = CliRunner().invoke(main, [*base, "all", "--profile", "smoke", "--seeds", "2"])
    assert rerun.exit_code == 0, rerun.output
    assert "3 trained, 1 already finished" in rerun.output


def test_spooled_results_are_uploaded_by_the_next_command(tmp_path, monkeypatch):
    """A worker's writes after the store fails are kept on disk, files included, and replayed
    into the same run later: it ends FINISHED with every metric."""
    from harness.identity import RunIdentity
    from harness.spool import SpoolingTracker, pending, replay
    from harness.tracking import Tracker

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    identity = RunIdentity("tiny-a", "smoke", 0, "hash", "fp", "r.txt")
    run_id = tracker.child_run(identity, tracker.parent_run(identity, description="x"))

    class Failing:
        def __init__(self, real):
            self.real, self.writes = real, 0

        def __getattr__(self, name):
            def call(*args, **kwargs):
                if name != "get_run":
                    self.writes += 1
                    if self.writes > 1:
                        raise ConnectionError("server gone (injected)")
                return getattr(self.real, name)(*args, **kwargs)

            return call

    spooling = SpoolingTracker(Failing(tracker), run_id)
    spooling.log_metrics(run_id, {"val_accuracy": 0.1}, step=1)  # reaches the store
    spooling.log_metrics(run_id, {"val_accuracy": 0.2}, step=2)  # refused: kept
    artifact = tmp_path / "summary.txt"
    artifact.write_text("the model")
    spooling.log_artifact(run_id, artifact)
    spooling.log_metrics(run_id, {"test_accuracy": 0.3})
    spooling.finish(run_id)
    artifact.unlink()  # a worker's scratch folder is gone by the time the store is back
    assert spooling.offline.startswith("ConnectionError: server gone") and len(pending()) == 1
    assert tracker.get_run(run_id).info.status == "RUNNING"

    notes = []
    assert replay(tracker, notes.append) == 1 and pending() == []
    run = tracker.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["test_accuracy"] == 0.3
    assert tracker.metric_history(run_id, "val_accuracy") == [0.1, 0.2]
    assert [a.path for a in tracker.client.list_artifacts(run_id)] == ["summary.txt"]
    assert "kept locally when the store refused it" in notes[0]


def test_repair_closes_what_a_dead_process_left_running(tmp_path):
    from harness.identity import RunIdentity
    from harness.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    identity = RunIdentity("tiny-a", "smoke", 0, "hash", "fp", "r.txt")
    parent = tracker.parent_run(identity, description="x")
    done = tracker.child_run(RunIdentity("tiny-a", "smoke", 1, "hash", "fp", "r.txt"), parent)
    tracker.log_metrics(done, {"test_accuracy": 0.5})
    tracker.finish(done)
    orphan = tracker.child_run(identity, parent, owner=f"{__import__('socket').gethostname()}:999999999")
    lines = tracker.repair()
    assert tracker.get_run(orphan).info.status == "KILLED"
    assert tracker.get_run(parent).info.status == "FINISHED"
    assert tracker.get_run(parent).data.metrics["n"] == 1
    assert len(lines) == 2


def test_code_in_the_working_directory_is_not_imported_by_workers(tmp_path, synthetic_npz, test_config):
    """`python -m` puts the working directory first on sys.path: a keras.py or numpy.py there
    would run in every worker. Workers start with -P, so the run trains as if they were absent."""
    for module in ("keras", "numpy"):
        (tmp_path / f"{module}.py").write_text(f"raise ImportError('the {module}.py in the working directory ran')\n")
    command = sweep_command(tmp_path, synthetic_npz, test_config, "run", "tiny-a", "--profile", "smoke", "--seeds", "1")
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert [r.info.status for r in children(f"sqlite:///{tmp_path / 'mlflow.db'}")] == ["FINISHED"]


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path, test_config, monkeypatch):
    """Stopping is bounded: a worker that ignores SIGTERM (overloaded, stuck in native code) is
    killed once the grace period is over, and its run is marked KILLED, not left RUNNING."""
    import os
    import signal
    import stat
    import threading
    import time

    from harness import executors
    from harness.config import load_config
    from harness.plan import SweepSettings, plan
    from harness.tracking import Tracker

    stubborn = tmp_path / "python"
    stubborn.write_text("#!/bin/sh\ntrap '' TERM INT\nexec sleep 300\n")
    stubborn.chmod(stubborn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(executors, "STOP_GRACE_SECONDS", 2.0)
    config = load_config(test_config)
    specs = plan(config, [config.recipe("tiny-a")], profile="smoke", seeds=[0], data_fingerprint="fp")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    executor = executors.LocalExecutor(config, Tracker(store), SweepSettings(profile="smoke"), python=str(stubborn))
    # Python's Ctrl-C handler, whatever this process inherited: a shell starts a background job
    # (`nohup … &`) with SIGINT ignored, and Python then installs none.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Timer(5.0, os.kill, args=(os.getpid(), signal.SIGINT)).start()  # Ctrl-C once the worker runs
    started = time.monotonic()
    try:
        report = executor.sweep(specs)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert report.interrupted and time.monotonic() - started < 5.0 + 2.0 + 15.0
    assert [r.info.status for r in children(store)] == ["KILLED"]


def test_a_copied_store_says_where_its_artifacts_go(tmp_path):
    """MLflow records an experiment's artifact folder as an absolute path: a store copied to
    another folder keeps writing artifacts to the old one. The sweep says so."""
    import shutil

    from harness.tracking import Tracker

    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    assert Tracker(f"sqlite:///{original / 'mlflow.db'}").moved_store_note() is None
    shutil.copytree(original, copy)
    note = Tracker(f"sqlite:///{copy / 'mlflow.db'}").moved_store_note()
    assert note is not None and str(original / "mlruns") in note and "copied or moved" in note


@pytest.fixture
def quick_busy_timeout(monkeypatch):
    """MLflow waits 20 s on a locked sqlite store before "database is locked"; 0.2 s here, so a
    lock held for seconds reaches the harness in a test's time."""
    import mlflow.store.db.utils as db_utils
    from sqlalchemy import sql

    class Quick:
        def __getattr__(self, name):
            return getattr(sql, name)

        @staticmethod
        def text(statement, *args, **kwargs):
            return sql.text(statement.replace("busy_timeout = 20000", "busy_timeout = 200"), *args, **kwargs)

    monkeypatch.setattr(db_utils, "sql", Quick())


def hold_exclusive_lock(database, seconds: float) -> subprocess.Popen:
    """Another process holding an exclusive transaction on ``database`` for ``seconds``."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "connection.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "connection.execute('COMMIT')\n",
            str(database),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_locked_store_is_waited_out_not_spooled(tmp_path, monkeypatch, quick_busy_timeout):
    """Another process holds the sqlite store's write lock for 3 s: the worker's write fails with
    "database is locked" at once (busy timeout 0.2 s here), is retried with backoff and lands in
    the store; nothing is kept on disk for a later upload."""
    from harness.spool import SpoolingTracker, pending

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    database = tmp_path / "mlflow.db"
    tracker = Tracker(f"sqlite:///{database}")
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    holder = hold_exclusive_lock(database, 3.0)
    spooling = SpoolingTracker(tracker, run_id)
    spooling.log_metrics(run_id, {"accuracy/test": 0.5})
    holder.wait(timeout=30)
    assert spooling.offline is None and pending() == []
    assert tracker.client.get_run(run_id).data.metrics["accuracy/test"] == 0.5


def test_a_lock_that_outlasts_the_retries_is_spooled(tmp_path, monkeypatch, quick_busy_timeout):
    import harness.spool
    from harness.spool import SpoolingTracker, pending

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(harness.spool, "LOCKED_RETRY_SECONDS", 1.0)
    database = tmp_path / "mlflow.db"
    tracker = Tracker(f"sqlite:///{database}")
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    holder = hold_exclusive_lock(database, 4.0)
    spooling = SpoolingTracker(tracker, run_id)
    spooling.log_metrics(run_id, {"accuracy/test": 0.5})
    holder.wait(timeout=30)
    assert "database is locked" in spooling.offline and len(pending()) == 1
