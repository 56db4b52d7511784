"""The MLflow store across processes: creation, claims, and what survives a store failure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.store.tracking import Tracker

pytestmark = pytest.mark.slow  # real processes

OPEN_STORE = """
import sys
from harness.store.tracking import Tracker
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
    from harness.store.tracking import Tracker

    tracker = Tracker(uri)
    assert tracker.search("") == []


def sweep_command(tmp_path, data, config, *extra, store=None):
    store = store or f"sqlite:///{tmp_path / 'mlflow.db'}"
    bench = str(__import__("pathlib").Path(sys.executable).with_name("bench"))
    return [bench, "--config", str(config), "--data", str(data), "--tracking-uri", store, *extra]


def children(store: str):
    from harness.store.tracking import Tracker

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
    from harness.store.tracking import Tracker

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
    sweep = [*base, "all", "--profile", "smoke", "--seeds", "1"]  # tiny-a seed 0, then tiny-b seed 0
    result = CliRunner().invoke(main, sweep)
    assert result.exit_code == 1, result.output
    assert "STOPPED the tracking store failed to claim the run: OSError: disk I/O error (injected)" in result.output
    assert "kept locally" not in result.output  # nothing was: the line must not say it will be uploaded
    assert "Traceback" not in result.output and len(calls) == 2  # nothing started after the failure
    monkeypatch.setattr(Tracker, "claim", real_claim)
    rerun = CliRunner().invoke(main, sweep)
    assert rerun.exit_code == 0, rerun.output
    assert "1 trained, 1 already finished" in rerun.output


def test_spooled_results_are_uploaded_by_the_next_command(tmp_path, monkeypatch):
    """A worker's writes after the store fails are kept on disk, files included, and replayed
    into the same run later: it ends FINISHED with every metric."""
    from harness.identity import RunIdentity
    from harness.store.spool import SpoolingTracker, pending, replay
    from harness.store.tracking import Tracker
    from tests.test_spool import FailingStore

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    identity = RunIdentity("tiny-a", "smoke", 0, "hash", "fp", "r.txt")
    run_id = tracker.child_run(identity, tracker.parent_run(identity, description="x"))

    spooling = SpoolingTracker(FailingStore(tracker, writes=1), run_id)
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
    from harness.store.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    identity = RunIdentity("tiny-a", "smoke", 0, "hash", "fp", "r.txt")
    parent = tracker.parent_run(identity, description="x")
    done = tracker.child_run(RunIdentity("tiny-a", "smoke", 1, "hash", "fp", "r.txt"), parent)
    tracker.log_metrics(done, {"test_accuracy": 0.5})
    tracker.finish(done)
    orphan = tracker.child_run(identity, parent, owner=f"{__import__('socket').gethostname()}:999999999")
    lines = tracker.repair()
    assert tracker.get_run(orphan).info.status == "KILLED"
    assert tracker.get_run(parent).info.status == "FINISHED"  # its seed 1 finished
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

    from harness.config import load_config
    from harness.store.tracking import Tracker
    from harness.sweep import executors
    from harness.sweep.plan import SweepSettings, plan

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

    from harness.store.tracking import Tracker

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
    from harness.store.spool import SpoolingTracker, pending

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
    import harness.store.spool
    from harness.store.spool import SpoolingTracker, pending

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(harness.store.spool, "LOCKED_RETRY_SECONDS", 1.0)
    database = tmp_path / "mlflow.db"
    tracker = Tracker(f"sqlite:///{database}")
    run_id = tracker.client.create_run(tracker.experiment_id).info.run_id
    holder = hold_exclusive_lock(database, 4.0)
    spooling = SpoolingTracker(tracker, run_id)
    spooling.log_metrics(run_id, {"accuracy/test": 0.5})
    holder.wait(timeout=30)
    assert "database is locked" in spooling.offline and len(pending()) == 1


DELETE_EXPERIMENT_MID_SWEEP = """
import sys
from harness.sweep import executors
real_sweep = executors.LocalExecutor.sweep
def sweep(self, specs, **kwargs):  # planned, checked and costed; deleted before its first parent run
    self.tracker.client.delete_experiment(self.tracker.experiment_id)
    return real_sweep(self, specs, **kwargs)
executors.LocalExecutor.sweep = sweep
from harness.cli import main
main(sys.argv[1:], prog_name="bench")
"""


def test_a_store_that_refuses_a_parent_run_stops_in_one_line(tmp_path, synthetic_npz, test_config):
    """The experiment is deleted mid-sweep, so the real store refuses to create a parent run. The
    parent was created under the executor's lock and the failure handler took that same lock: the
    command hung for ever (and ignored SIGTERM). Now: one STOPPED line, exit 1, within seconds."""
    command = sweep_command(tmp_path, synthetic_npz, test_config, "all", "--profile", "smoke", "--seeds", "1")
    result = subprocess.run(
        [sys.executable, "-c", DELETE_EXPERIMENT_MID_SWEEP, *command[1:], "--jobs", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,  # the hang was for ever; planning and the cost probe take a few seconds
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    stopped = [line for line in output.splitlines() if "STOPPED" in line]
    assert len(stopped) == 1 and "failed to create a parent run" in stopped[0], output
    assert "must be in the 'active' state" in stopped[0] and "Traceback" not in output
    rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 1 and "was deleted: restore it" in rerun.stderr, rerun.stdout + rerun.stderr


def test_a_worker_that_cannot_open_the_store_is_a_store_error_not_a_failed_seed(tmp_path, synthetic_npz, test_config):
    """Workers are told a tracking server that is not there (nothing listens on its port): the
    sweep stops on a store error in seconds (MLflow's retries are bounded in every harness
    process), and no seed is counted as failed: nothing trained."""
    import dataclasses
    import socket
    import threading

    from harness.config import load_config
    from harness.store.tracking import Tracker
    from harness.sweep import executors
    from harness.sweep.plan import SweepSettings, plan

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"

    class DeadStoreForWorkers(executors.LocalExecutor):
        def payload(self, spec, run_id):
            return dataclasses.replace(super().payload(spec, run_id), tracking_uri=dead)

    config = load_config(test_config)
    specs = plan(config, [config.recipe("tiny-a")], profile="smoke", seeds=[0, 1], data_fingerprint="fp")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = SweepSettings(profile="smoke", data_path=str(synthetic_npz))
    executor = DeadStoreForWorkers(config, Tracker(store), settings)
    reports = []
    sweeping = threading.Thread(target=lambda: reports.append(executor.sweep(specs)), daemon=True)
    sweeping.start()
    sweeping.join(timeout=120)  # a worker import takes seconds; MLflow's own retries took minutes
    assert not sweeping.is_alive(), "the sweep still waits on a store that is not there"
    [report] = reports
    assert report.by_status("FAILED") == [] and report.outcomes == []
    assert "could not open the tracking store" in report.store_error and "ConnectionError" in report.store_error
    [child] = children(store)  # the second seed never started
    assert child.info.status == "KILLED" and "could not open the tracking store" in child.data.tags["bench.error"]


def test_the_worker_that_trains_keeps_its_claim_alive(tmp_path, synthetic_npz, test_config, monkeypatch):
    """A claim's heartbeat came only from the bench process: stopped (Ctrl-Z, SIGSTOP) while its
    worker trained on, its claim went stale after 150 s and another sweep trained the seed too.
    The worker beats while it trains (here every 0.2 s, with no bench process beating at all)."""
    import io

    from harness.config import load_config
    from harness.run import worker
    from harness.run.data import load_cifar10
    from harness.run.protocol import WorkerPayload
    from harness.store import claims, tracking
    from harness.sweep.plan import plan

    monkeypatch.setattr(claims, "HEARTBEAT_SECONDS", 0.2)
    config = load_config(test_config)
    fingerprint = load_cifar10(str(synthetic_npz)).fingerprint
    [spec] = plan(config, [config.recipe("tiny-a")], profile="smoke", seeds=[0], data_fingerprint=fingerprint)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = tracking.Tracker(store)
    run_id, _ = tracker.claim(spec.identity, tracker.parent_run(spec.identity, description=""), "elsewhere:1")
    tracker.set_tag(run_id, "bench.heartbeat", "1000")  # its bench process beats no more
    payload = WorkerPayload(
        config_path=str(test_config),
        identity=spec.identity,
        tracking_uri=store,
        experiment=tracker.experiment_name,
        run_id=run_id,
        data_path=str(synthetic_npz),
    )
    worker.run(payload, io.StringIO())
    run = tracker.get_run(run_id)
    assert run.info.status == "FINISHED" and float(run.data.tags["bench.heartbeat"]) > 1000


def test_mlflows_own_error_logs_are_folded_into_the_stopped_line(tmp_path, synthetic_npz, test_config, monkeypatch):
    """The sqlite store refuses a write (a real SQLAlchemy OperationalError inside MLflow):
    MLflow logs it as an ERROR with its traceback and SQL. Only the harness's one STOPPED line
    is printed; --debug shows MLflow's own message too."""
    import sqlite3

    import sqlalchemy.exc
    import sqlalchemy.orm
    from click.testing import CliRunner

    from harness.cli import main
    from harness.store.tracking import Tracker

    calls = []
    real_claim, real_commit = Tracker.claim, sqlalchemy.orm.Session.commit

    def read_only_commit(self, *args, **kwargs):
        raise sqlalchemy.exc.OperationalError(
            "INSERT INTO runs", {}, sqlite3.OperationalError("attempt to write a readonly database")
        )

    def claim_on_a_read_only_store(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:  # the first claim: nothing trains
            monkeypatch.setattr(sqlalchemy.orm.Session, "commit", read_only_commit)
        try:
            return real_claim(self, *args, **kwargs)
        finally:
            monkeypatch.setattr(sqlalchemy.orm.Session, "commit", real_commit)

    monkeypatch.setattr(Tracker, "claim", claim_on_a_read_only_store)
    base = ["--config", str(test_config), "--data", str(synthetic_npz)]
    for debug in ([], ["--debug"]):
        (tmp_path / str(len(debug))).mkdir()
        monkeypatch.chdir(tmp_path / str(len(debug)))  # a store of its own
        calls.clear()
        result = CliRunner().invoke(
            main, [*debug, *base, "all", "--profile", "smoke", "--seeds", "1", "--only", "tiny-a"]
        )
        assert result.exit_code == 1, result.output
        assert "STOPPED" in result.output and "attempt to write a readonly database" in result.output
        mlflows = "SQLAlchemy database error" in result.output or "Traceback" in result.output
        assert mlflows is bool(debug), result.output
