"""Failures stay local and interrupted sweeps resume: real processes, real signals, real sqlite."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.store.schema import EPOCH_METRICS
from tests.conftest import TEST_CONFIG

pytestmark = pytest.mark.slow  # trains models in worker processes or starts servers

# Long enough that a signal lands mid-training: 60 epochs of 200 images, about 16 s of training
# here after the first epoch is logged (30 left about 8 s for the test to notice and strike).
LONG_PROFILE = TEST_CONFIG.replace("max_epochs = 1", "max_epochs = 60").replace("epochs = 30 }", "epochs = 60 }")
# For a test that never lets the run finish: so long that no load on the machine lets it end
# before the signal (with 60 epochs a busy machine once noticed the first epoch too late).
ENDLESS_PROFILE = LONG_PROFILE.replace("max_epochs = 60", "max_epochs = 100000").replace(
    "epochs = 60 }", "epochs = 100000 }"
)


def start_sweep(tmp_path: Path, data: Path, *extra: str, config_text: str = LONG_PROFILE) -> subprocess.Popen:
    config = tmp_path / "benchmarks.toml"
    config.write_text(config_text)
    command = [sys.executable, "-m", "harness.cli", "--config", str(config), "--data", str(data)]
    log = open(tmp_path / "sweep.log", "w")  # noqa: SIM115  closed when the process ends
    # --yes: ENDLESS_PROFILE's estimate is about a day here, and over a day on a loaded machine,
    # where a sweep without a terminal refuses to start (tests/test_first_run.py tests that).
    return subprocess.Popen(
        [*command, "all", "--profile", "smoke", "--seeds", "1", *extra, "--yes"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        # SIGHUP at its default even when pytest runs under nohup (which bench obeys: it goes on)
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )


def finish(sweep: subprocess.Popen, tmp_path: Path, timeout: float) -> str:
    sweep.wait(timeout=timeout)
    return (tmp_path / "sweep.log").read_text()


def runs(tmp_path: Path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def wait_for_training(tmp_path: Path, timeout: float = 300) -> None:
    """Until some child run has logged its first epoch. The bound is for a hang, not a speed
    check: with pytest -n 4 beside a training on 2 cores, a sweep's start (store, dataset, a probe
    on a cold cache, the worker's TensorFlow import) took over 120 s twice."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Open the store only once bench has created it (it prints this line right after).
        if "Checking the dataset" in (tmp_path / "sweep.log").read_text():
            for run in runs(tmp_path):
                if run.data.tags.get("bench.kind") == "child" and EPOCH_METRICS["val_loss"] in run.data.metrics:
                    return
        time.sleep(0.5)
    log = tmp_path / "sweep.log"
    raise AssertionError(f"no run started training within {timeout:.0f} s; bench said:\n{log.read_text()[-3000:]}")


def worker_pids(parent: int) -> list[int]:
    """The ``harness.run.worker`` processes that ``parent`` started. Workers are started by pool
    threads, and each thread's task lists its own children; a thread may end while this reads
    (gone from /proc), and a child may be some other short-lived command: neither is a worker."""
    pids = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in (task / "children").read_text().split()]
    workers = []
    for pid in pids:
        with contextlib.suppress(OSError):
            if b"harness.run.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
    return workers


def children_by_status(tmp_path: Path) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for run in runs(tmp_path):
        if run.data.tags.get("bench.kind") == "child":
            grouped.setdefault(run.info.status, []).append(run.data.tags["bench.recipe"])
    return grouped


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs Linux /proc to find the worker")
def test_kill_9_of_a_worker_fails_that_run_only(tmp_path, synthetic_npz):
    sweep = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-a", config_text=ENDLESS_PROFILE)
    wait_for_training(tmp_path)
    os.kill(worker_pids(sweep.pid)[0], signal.SIGKILL)
    output = finish(sweep, tmp_path, 120)
    assert sweep.returncode == 1, output
    assert "worker process died from SIGKILL" in output
    [failed] = [r for r in runs(tmp_path) if r.info.status == "FAILED" and r.data.tags.get("bench.kind") == "child"]
    assert "SIGKILL" in failed.data.tags["bench.error"]  # its parent is FAILED too: its one seed failed


def test_sigterm_marks_the_run_killed_and_a_rerun_resumes(tmp_path, synthetic_npz):
    sweep = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-a")
    wait_for_training(tmp_path)
    sweep.send_signal(signal.SIGTERM)
    output = finish(sweep, tmp_path, 120)
    assert sweep.returncode == 130, output
    assert "rerun the same command" in output
    assert children_by_status(tmp_path) == {"KILLED": ["tiny-a"]}
    parents = [r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "parent"]
    assert [p.info.status for p in parents] == ["KILLED"]  # closed, not left RUNNING; KILLED: no seed finished

    rerun = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-a")
    output = finish(rerun, tmp_path, 300)
    assert rerun.returncode == 0, output
    assert children_by_status(tmp_path) == {"FINISHED": ["tiny-a"], "KILLED": ["tiny-a"]}  # one FINISHED per identity


def test_sighup_stops_the_sweep_as_sigterm_does(tmp_path, synthetic_npz):
    """A closed terminal or a dropped ssh session sends SIGHUP: bench died at once, its parent
    left RUNNING and its worker orphaned. It stops like SIGTERM: the run KILLED, the parent
    closed, exit 130."""
    sweep = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-a", config_text=ENDLESS_PROFILE)
    wait_for_training(tmp_path)
    sweep.send_signal(signal.SIGHUP)
    output = finish(sweep, tmp_path, 120)
    assert sweep.returncode == 130, output
    assert children_by_status(tmp_path) == {"KILLED": ["tiny-a"]}
    parents = [r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "parent"]
    assert [p.info.status for p in parents] == ["KILLED"]  # closed; KILLED: its one seed was interrupted


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs Linux /proc to find the worker")
def test_kill_9_of_bench_itself_stops_its_worker_and_a_rerun_resumes(tmp_path, synthetic_npz):
    sweep = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-a")
    wait_for_training(tmp_path)
    [worker] = worker_pids(sweep.pid)
    # The worker's stderr: a file in bench's scratch folder, which a killed bench leaves behind.
    worker_log = Path(os.readlink(f"/proc/{worker}/fd/2"))
    sweep.kill()  # SIGKILL: no handler of bench runs, its worker is orphaned mid-training
    sweep.wait(timeout=30)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    log_tail = worker_log.read_text(errors="replace")[-3000:] if worker_log.exists() else "(no worker log)"
    with contextlib.suppress(OSError):  # the scratch folder held only the log
        worker_log.unlink()
        worker_log.parent.rmdir()
    # Gone or a zombie waiting for init to reap it: either way, not training on.
    assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2], log_tail
    [killed] = [r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "child"]
    assert killed.info.status == "KILLED", log_tail
    assert "bench process that started this run died" in killed.data.tags["bench.error"]

    rerun = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-a")
    output = finish(rerun, tmp_path, 300)
    assert rerun.returncode == 0, output
    assert children_by_status(tmp_path) == {"FINISHED": ["tiny-a"], "KILLED": ["tiny-a"]}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real MLflow tracking server on loopback, stopped after the test."""
    port = free_port()
    server = launch_server(tmp_path, port)
    yield f"http://127.0.0.1:{port}"
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def launch_server(tmp_path: Path, port: int) -> subprocess.Popen:
    """``mlflow server`` on ``tmp_path/server.db``, answering on ``port`` when this returns."""
    import urllib.request

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # MLflow's job consumers (about six huey processes per server) serve GenAI jobs no test
        # uses: off, as `bench ui` has them (they took 49 s of CPU over one run of the suite).
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        pytest.fail("mlflow server did not start within 120 s")
    return server


def test_a_killed_server_loses_no_result_and_the_next_command_repairs(tmp_path, synthetic_npz, monkeypatch):
    """The tracking server dies while a run trains: the run's results are kept on disk, the sweep
    starts nothing new and says why in one line (exit 1) in under a minute, with MLflow's own
    retry settings untouched (its retries with backoff, call after call, held it about 21
    minutes); once the server is back, the same command uploads the kept results, and trains the
    rest: one FINISHED run per identity."""
    for name in (
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    ):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    server = launch_server(tmp_path, port)
    uri = f"http://127.0.0.1:{port}"
    sweep = start_sweep(tmp_path, synthetic_npz, "--tracking-uri", uri)
    store = MlflowClient(f"sqlite:///{tmp_path / 'server.db'}")  # the server's own database, read directly

    def children():
        experiment = store.get_experiment_by_name("cifar10-bench")
        found = [] if experiment is None else store.search_runs([experiment.experiment_id])
        return [r for r in found if r.data.tags.get("bench.kind") == "child"]

    deadline = time.monotonic() + 180
    while not any(EPOCH_METRICS["val_loss"] in r.data.metrics for r in children()):
        assert time.monotonic() < deadline and sweep.poll() is None, (tmp_path / "sweep.log").read_text()
        time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    killed = time.monotonic()
    server.wait(timeout=30)
    output = finish(sweep, tmp_path, timeout=120)  # the rest of the run's training, then its spool
    assert sweep.returncode == 1, output
    assert time.monotonic() - killed < 60, output
    assert "STOPPED the tracking store refused a run's results" in output and "Traceback" not in output
    assert "results kept locally" in output  # on the run's own line
    [running] = children()
    assert running.info.status == "RUNNING"  # as the server last saw it

    server = launch_server(tmp_path, port)
    try:
        rerun = start_sweep(tmp_path, synthetic_npz, "--tracking-uri", uri)
        output = finish(rerun, tmp_path, timeout=600)
        assert rerun.returncode == 0, output
        assert "uploaded run" in output
        final = children()
        assert sorted(r.data.tags["bench.recipe"] for r in final) == ["tiny-a", "tiny-b"]
        assert {r.info.status for r in final} == {"FINISHED"}
        assert all("accuracy/test" in r.data.metrics for r in final)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.parametrize("store", ["sqlite", "server"])
def test_parallel_workers_lose_no_run_and_no_metric(tmp_path, synthetic_npz, monkeypatch, store, request):
    """--jobs 4 against the default sqlite store, and against a real MLflow server on loopback:
    every run finishes with every epoch logged."""
    from click.testing import CliRunner

    from harness.cli import main

    config = tmp_path / "benchmarks.toml"
    config.write_text(TEST_CONFIG.replace("max_epochs = 1", "max_epochs = 3").replace("patience = 2", "patience = 50"))
    monkeypatch.chdir(tmp_path)
    uri = request.getfixturevalue("mlflow_server") if store == "server" else f"sqlite:///{tmp_path / 'mlflow.db'}"
    arguments = ["--config", str(config), "--data", str(synthetic_npz)]
    arguments += [] if store == "sqlite" else ["--tracking-uri", uri]  # sqlite: the default store, ./mlflow.db
    result = CliRunner().invoke(main, [*arguments, "all", "--profile", "smoke", "--seeds", "2", "--jobs", "4"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mlflow.db").exists() == (store == "sqlite")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("cifar10-bench")
    children = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("bench.kind") == "child"]
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
    for child in children:
        for key in (
            "loss/train",
            "accuracy/train",
            "loss/validation",
            "accuracy/validation",
            "time/epoch_seconds",
        ):
            steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
            assert sorted(steps) == [1, 2, 3], (key, steps)
        assert {"accuracy/test", "loss/test", "time/train_seconds"} <= set(child.data.metrics)
        # What other work took of the CPUs (/proc/stat, Linux), over the run and per epoch where
        # a clock tick passed (a tiny model's epoch may be shorter).
        assert 0.0 <= child.data.metrics["time/others_cpu"] <= 1.0
        shares = client.get_metric_history(child.info.run_id, "time/epoch_others_cpu")
        assert {m.step for m in shares} <= {1, 2, 3} and all(0.0 <= m.value <= 1.0 for m in shares)
        assert "confusion_matrix.png" in {a.path for a in client.list_artifacts(child.info.run_id)}
    # the four runs overlapped in time: they really ran in parallel
    spans = sorted((r.info.start_time, r.info.end_time) for r in children)
    assert any(later_start < earlier_end for (_, earlier_end), (later_start, _) in zip(spans, spans[1:], strict=False))


def test_a_diverging_run_fails_alone_and_the_sweep_goes_on(tmp_path, synthetic_npz):
    """NaN loss in one recipe: FAILED with "diverged at epoch k"; the other recipe still trains;
    the command lists the failure and exits 1. Adam with epsilon 0 computes 0/0 for any weight whose
    gradient is still zero, so tiny-a's loss is NaN within its first epoch."""
    config = tmp_path / "benchmarks.toml"
    exploding = 'training = { optimizer = "adam", learning_rate = 0.001, optimizer_options = { epsilon = 0.0 }, loss'
    text = TEST_CONFIG.replace('training = { optimizer = "adam", learning_rate = 0.001, loss', exploding, 1)
    healthy = 'training = { optimizer_options = { epsilon = 1e-7 }, loss = "categorical_crossentropy" }'
    config.write_text(text.replace('training = { loss = "categorical_crossentropy" }', healthy, 1))
    assert exploding in config.read_text() and healthy in config.read_text()
    sweep = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--config", str(config), "--data", str(synthetic_npz)]
        + ["all", "--profile", "smoke", "--seeds", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = sweep.stdout + sweep.stderr
    assert sweep.returncode == 1, output
    assert "diverged at epoch 1" in output and "1 failed" in output
    statuses = {r.data.tags["bench.recipe"]: r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "child"}
    assert statuses["tiny-a"].info.status == "FAILED"
    assert "diverged at epoch 1" in statuses["tiny-a"].data.tags["bench.error"]
    assert statuses["tiny-b"].info.status == "FINISHED"


def test_a_failure_reason_leaves_out_tensorflow_startup_noise():
    from harness.sweep.executors import _without_startup_noise

    # The stderr a VGG16 worker left when it died from SIGSEGV on this machine.
    tail = (
        "oneDNN custom operations are on. You may see slightly different numerical results due to floating-point"
        " round-off\nerrors from different computation orders. To turn them off, set the environment variable"
        " `TF_ENABLE_ONEDNN_OPTS=0`.\nI0000 00:00:1795417905.459786   20137 cudart_stub.cc:31] Could not find cuda"
        " drivers on your machine, GPU will not be used.\nE0000 00:00:1795417905.858572   20137 cuda_platform.cc:52]"
        " failed call to cuInit: INTERNAL: CUDA error\n"
    )
    assert _without_startup_noise(tail) == ""
    assert _without_startup_noise(tail + "Fatal Python error: Segmentation fault\n") == (
        "Fatal Python error: Segmentation fault"
    )


# tiny-b (augmented: flips and rotations drawn from SeedGenerators) with an EarlyStopping that can
# never see an improvement past the first epoch: it stops after exactly 1 + 30 epochs, so a
# resumed run that forgot how long it had waited would run longer.
RESUME_PROFILE = LONG_PROFILE.replace(
    'callbacks = [{ kind = "early_stopping", monitor = "val_loss", patience = 2 }]',
    'callbacks = [{ kind = "early_stopping", monitor = "val_loss", patience = 30, min_delta = 1000.0 }]',
)
STOPS_AFTER = 31


def wait_for_epochs(tmp_path: Path, epochs: int, timeout: float = 180) -> None:
    """Until a RUNNING child run has logged ``epochs`` epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Checking the dataset" in (tmp_path / "sweep.log").read_text():
            client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
            for run in runs(tmp_path):
                if run.info.status == "RUNNING" and run.data.tags.get("bench.kind") == "child":
                    if len(client.get_metric_history(run.info.run_id, EPOCH_METRICS["loss"])) >= epochs:
                        return
        time.sleep(0.2)
    raise AssertionError(f"no run reached epoch {epochs}")


def checkpoint_of(tmp_path: Path, run) -> Path:
    """Where the run's checkpoint lives (the command's store is tmp_path/mlflow.db)."""
    from harness.run.checkpoint import checkpoint_path
    from harness.store.connection import default_tracking_uri

    tags = run.data.tags
    uri = default_tracking_uri(tmp_path)
    return checkpoint_path(tags["bench.recipe"], int(tags["bench.seed"]), tags["bench.identity"], uri, "cifar10-bench")


def curve(tmp_path: Path, run, key: str = "loss") -> list[tuple[int, float]]:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, EPOCH_METRICS[key]))


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs Linux /proc to find the worker")
def test_a_worker_killed_mid_run_resumes_at_its_last_epoch_and_ends_as_if_never_stopped(tmp_path, synthetic_npz):
    from harness.run.checkpoint import finished_epochs

    sweep = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-b", config_text=RESUME_PROFILE)
    wait_for_epochs(tmp_path, 5)
    [worker] = worker_pids(sweep.pid)
    os.kill(worker, signal.SIGKILL)
    output = finish(sweep, tmp_path, 120)
    assert sweep.returncode == 1 and "SIGKILL" in output, output
    [killed] = [r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "child"]
    path = checkpoint_of(tmp_path, killed)
    kept = finished_epochs(path)
    # At any kept epoch EarlyStopping holds state a resumed run must not lose: its best value (a
    # fresh one would count epoch kept + 1 as an improvement and stop an epoch late) and its wait.
    # How many epochs the checkpoint lags the kill depends on the machine (at most 5 % of training
    # goes to checkpoints).
    assert kept is not None and 1 <= kept < STOPS_AFTER

    rerun = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-b", config_text=RESUME_PROFILE)
    output = finish(rerun, tmp_path, 300)
    assert rerun.returncode == 0, output
    assert f"tiny-b seed 0: continues from its checkpoint after epoch {kept} of 60" in output
    children = [r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "child"]
    [resumed] = [r for r in children if r.info.status == "FINISHED"]  # one FINISHED run per identity
    assert resumed.data.tags["bench.resumed_from_epoch"] == str(kept)
    assert resumed.data.tags["bench.resumed_from_run"] == killed.info.run_id
    assert resumed.data.metrics["training/epochs_run"] == STOPS_AFTER  # patience counted across the break
    # build time is this process's own: the killed piece's fit time is not taken off it
    assert 0 <= resumed.data.metrics["overhead/build_seconds"] < 120
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert [step for step, _ in curve(tmp_path, resumed, key)] == list(range(1, STOPS_AFTER + 1)), key
    assert not path.exists()  # a finished run leaves no checkpoint

    # The same command in another store, never stopped: the same numbers, to the last bit.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    again = start_sweep(fresh, synthetic_npz, "--only", "tiny-b", config_text=RESUME_PROFILE)
    assert finish(again, fresh, 300) and again.returncode == 0
    [whole] = [r for r in runs(fresh) if r.data.tags.get("bench.kind") == "child"]
    assert "bench.resumed_from_epoch" not in whole.data.tags
    for key in ("accuracy/test", "loss/test", "training/epochs_run"):
        assert resumed.data.metrics[key] == whole.data.metrics[key], key
    assert curve(tmp_path, resumed, "val_loss") == curve(fresh, whole, "val_loss")


def test_a_corrupt_checkpoint_is_ignored_in_one_line_and_the_run_starts_over(tmp_path, synthetic_npz):
    from harness.config import load_config
    from harness.run.data import load_cifar10
    from harness.store.connection import default_tracking_uri
    from harness.sweep.plan import plan

    config_path = tmp_path / "benchmarks.toml"
    config_path.write_text(TEST_CONFIG)
    config = load_config(config_path)
    fingerprint = load_cifar10(synthetic_npz).fingerprint
    [spec] = plan(config, [config.recipe("tiny-a")], profile="smoke", seeds=[0], data_fingerprint=fingerprint)
    from harness.run.checkpoint import checkpoint_path

    identity = spec.identity
    path = checkpoint_path("tiny-a", 0, identity.identity, default_tracking_uri(tmp_path), "cifar10-bench")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\3\4 half of a checkpoint written by a machine that lost power")

    sweep = start_sweep(tmp_path, synthetic_npz, "--only", "tiny-a", config_text=TEST_CONFIG)
    output = finish(sweep, tmp_path, 300)
    assert sweep.returncode == 0, output
    lines = [line for line in output.splitlines() if "ignored" in line]
    assert len(lines) == 1 and str(path.name) in lines[0] and "training from epoch 0" in lines[0], output
    [child] = [r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "child"]
    assert child.info.status == "FINISHED" and "bench.resumed_from_epoch" not in child.data.tags
    assert not path.exists()


# Longer than the budget whatever the start-up: 1,000 epochs of about 0.25 s.
BUDGET_PROFILE = TEST_CONFIG.replace("max_epochs = 1", "max_epochs = 1000").replace("epochs = 30 }", "epochs = 1000 }")


def test_the_time_budget_pauses_a_run_with_its_checkpoint_and_the_next_command_continues_it(tmp_path, synthetic_npz):
    from harness.run.checkpoint import finished_epochs

    # A dry run first: it measures the cost probe this session's cache lacks, which would otherwise
    # take a good part of the budget before training starts.
    assert finish(start_sweep(tmp_path, synthetic_npz, "--dry-run", config_text=BUDGET_PROFILE), tmp_path, 300)
    # 60 s: the budget counts from the command's start, and on a loaded machine (the suite beside a
    # training run) opening the store, the estimate and the worker's TensorFlow import took 40 s
    # before the first epoch ended, so the run stopped without a checkpoint.
    budget = ("--only", "tiny-a", "--time-budget", "60s")
    first = start_sweep(tmp_path, synthetic_npz, *budget, config_text=BUDGET_PROFILE)
    output = finish(first, tmp_path, 240)
    assert first.returncode == 4, output
    assert "Time budget (60 s) reached: 0 run(s) finished in it." in output
    assert "paused tiny-a seed 0 after epoch" in output and "(checkpoint kept)" in output
    assert (
        "Continue with: bench" in output and "all --profile smoke --seeds 1 --only tiny-a --time-budget 60s" in output
    )
    [paused] = [r for r in runs(tmp_path) if r.data.tags.get("bench.kind") == "child"]
    assert paused.info.status == "KILLED" and "time budget" in paused.data.tags["bench.error"]
    kept = finished_epochs(checkpoint_of(tmp_path, paused))
    assert kept is not None and kept >= 1

    second = start_sweep(tmp_path, synthetic_npz, *budget, config_text=BUDGET_PROFILE)
    output = finish(second, tmp_path, 240)
    assert second.returncode == 4, output
    [continued] = [
        r for r in runs(tmp_path) if r.info.run_id != paused.info.run_id and r.data.tags.get("bench.kind") == "child"
    ]
    assert continued.data.tags["bench.resumed_from_epoch"] == str(kept)
    further = finished_epochs(checkpoint_of(tmp_path, continued))
    assert further is not None and further > kept
    steps = [step for step, _ in curve(tmp_path, continued)]
    assert steps[:further] == list(range(1, further + 1)) and len(set(steps)) == len(steps)
