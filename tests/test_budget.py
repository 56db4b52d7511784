"""The time budget and the order runs start in.

The executor's side runs stand-in workers (a small script that speaks the worker protocol, one
epoch per tick) with made-up estimates, so every case takes seconds; the whole path with real
workers, a real deadline and the next command continuing is in ``tests/test_reliability.py``.
"""

from __future__ import annotations

import stat
import sys
import time

import click
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from harness.cli import main
from harness.cli.sweep import EXIT_BUDGET, Duration
from harness.config import load_config
from harness.store.tracking import Tracker
from harness.sweep import executors
from harness.sweep.executors import Outcome, Progress, SweepReport
from harness.sweep.plan import SweepSettings, order_runs, plan, run_order

STAND_IN = r"""
import json, os, signal, sys, time

payload = json.loads(sys.stdin.read())
identity = payload["identity"]
epochs, tick = int(os.environ["STAND_IN_EPOCHS"]), float(os.environ["STAND_IN_SECONDS"])


def event(**fields):
    print(json.dumps(fields), flush=True)


def stop(signum, frame):
    event(event="error", reason="KeyboardInterrupt: received SIGTERM")
    sys.exit(130)


signal.signal(signal.SIGTERM, stop)


def identity_key(fields):
    from harness.identity import RunIdentity

    return RunIdentity.from_dict(fields).identity


with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(f"{identity['recipe']} seed {identity['seed']}\n")
from harness.run import checkpoint

path = checkpoint.checkpoint_path(
    identity["recipe"], identity["seed"], identity_key(identity), payload["tracking_uri"], payload["experiment"]
)
event(event="start", epochs=epochs)
for epoch in range(1, epochs + 1):
    time.sleep(tick)
    logs = [{"loss": 1.0}] * epoch
    checkpoint.save(path, checkpoint.TrainingState(epoch, False, [], [], [], logs, epoch * tick))
    event(event="epoch", epoch=epoch, logs={})
    if epoch == int(os.environ.get("STAND_IN_PAUSE_AFTER", "0")):
        # A worker that paused itself at the deadline and was killed before it closed its run.
        event(event="paused", epoch=epoch, epochs=epochs)
        os._exit(130)
event(event="done", test_accuracy=0.5, train_seconds=epochs * tick, epochs_run=epochs)
"""


class Started(Progress):
    def __init__(self) -> None:
        self.started: list[str] = []

    def run_started(self, spec, index, total):
        self.started.append(spec.label)


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A `python` that runs STAND_IN whatever it is asked to run; returns (path, log of runs started)."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "started.log"
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    return python, log


def sweep(tmp_path, test_config, python, specs_of, *, deadline=None, first_epoch=None, jobs=1):
    config = load_config(test_config)
    specs = specs_of(config)
    settings = SweepSettings(profile="smoke", deadline=deadline, time_budget=None if deadline is None else 60.0)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    progress = Started()
    executor = executors.LocalExecutor(
        config, Tracker(store), settings, python=str(python), progress=progress, jobs=jobs
    )
    return executor.sweep(specs, first_epoch_seconds=first_epoch), progress, store


def tiny_runs(seeds=(0,), names=("tiny-a", "tiny-b")):
    return lambda config: plan(
        config, [config.recipe(n) for n in names], profile="smoke", seeds=list(seeds), data_fingerprint="fp"
    )


def test_a_run_starts_only_while_its_first_epoch_fits_the_budget(tmp_path, test_config, stand_in, monkeypatch):
    python, log = stand_in
    monkeypatch.setenv("STAND_IN_EPOCHS", "2")
    monkeypatch.setenv("STAND_IN_SECONDS", "0.05")
    specs = tiny_runs()(load_config(test_config))
    long_first_epoch = {specs[0].identity.identity: 0.5, specs[1].identity.identity: 3600.0}
    report, progress, _ = sweep(
        tmp_path, test_config, python, tiny_runs(), deadline=time.time() + 120, first_epoch=long_first_epoch
    )
    by_recipe = {o.spec.recipe.name: o for o in report.outcomes}
    assert by_recipe["tiny-a"].status == "FINISHED"
    assert by_recipe["tiny-b"].status == "LEFT" and "no room for one epoch" in by_recipe["tiny-b"].reason
    assert log.read_text().splitlines() == ["tiny-a seed 0"]  # tiny-b's worker never started
    assert report.budget_spent and not report.interrupted


def test_at_the_deadline_the_run_in_flight_pauses_and_nothing_new_starts(tmp_path, test_config, stand_in, monkeypatch):
    python, log = stand_in
    monkeypatch.setenv("STAND_IN_EPOCHS", "600")
    monkeypatch.setenv("STAND_IN_SECONDS", "0.1")
    deadline = time.time() + 25.0  # the store, the claim (1 s settle) and some epochs fit, even on a busy machine
    report, _, store = sweep(
        tmp_path, test_config, python, tiny_runs(seeds=(0, 1), names=("tiny-a",)), deadline=deadline
    )
    ended = time.time()
    paused, left = report.by_status("PAUSED"), report.by_status("LEFT")
    assert [o.spec.label for o in paused] == ["tiny-a seed 0"] and [o.spec.label for o in left] == ["tiny-a seed 1"]
    assert 1 <= paused[0].epochs_done < 600  # as its checkpoint holds them
    assert f"its checkpoint after epoch {paused[0].epochs_done} of 600 is kept" in paused[0].reason
    assert ended - deadline < executors.STOP_GRACE_SECONDS  # stopped at the deadline, not after the run
    assert report.budget_spent and not report.interrupted
    assert log.read_text().splitlines() == ["tiny-a seed 0"]
    client = MlflowClient(store)
    [child] = client.search_runs(
        [client.get_experiment_by_name("cifar10-bench").experiment_id], "tags.`bench.kind` = 'child'"
    )
    assert child.info.status == "KILLED" and "time budget" in child.data.tags["bench.error"]


def test_a_paused_worker_killed_before_it_closed_its_run_leaves_no_run_running(
    tmp_path, test_config, stand_in, monkeypatch
):
    """A worker says it paused at the deadline, then dies before it marks its run KILLED (on a
    busy machine the deadline's SIGTERM cut its last store write short): the sweep closes the run
    itself, KILLED with the reason, instead of leaving it RUNNING for the next command."""
    python, _ = stand_in
    monkeypatch.setenv("STAND_IN_EPOCHS", "10")
    monkeypatch.setenv("STAND_IN_SECONDS", "0.01")
    monkeypatch.setenv("STAND_IN_PAUSE_AFTER", "2")
    report, _, store = sweep(tmp_path, test_config, python, tiny_runs(names=("tiny-a",)), deadline=time.time() + 600)
    [paused] = report.by_status("PAUSED")
    assert paused.epochs_done == 2
    run = MlflowClient(store).get_run(paused.run_id)
    assert run.info.status == "KILLED", run.info.status
    assert "paused at the time budget after epoch 2 of 10" in run.data.tags["bench.error"]


def test_runs_start_in_the_order_given(tmp_path, test_config, stand_in, monkeypatch):
    python, _ = stand_in
    monkeypatch.setenv("STAND_IN_EPOCHS", "1")
    monkeypatch.setenv("STAND_IN_SECONDS", "0.01")

    def reversed_runs(config):
        return list(reversed(tiny_runs(seeds=(0, 1))(config)))

    _, progress, _ = sweep(tmp_path, test_config, python, reversed_runs)
    assert progress.started == ["tiny-b seed 1", "tiny-b seed 0", "tiny-a seed 1", "tiny-a seed 0"]


def test_order_cheapest_longest_or_file(test_config):
    config = load_config(test_config)
    a0, a1, b0, b1 = tiny_runs(seeds=(0, 1))(config)
    seconds = {a0.identity.identity: 50.0, a1.identity.identity: 20.0, b0.identity.identity: 90.0}
    seconds[b1.identity.identity] = 50.0  # ties keep the file's order
    runs = [a0, a1, b0, b1]
    assert order_runs(runs, seconds, "cheapest") == [a1, a0, b1, b0]
    assert order_runs(runs, seconds, "longest") == [b0, a0, b1, a1]
    assert order_runs(runs, seconds, "file") == runs
    assert order_runs(runs, {}, "longest") == runs  # nothing estimated: the file's order


@pytest.mark.parametrize(
    ("jobs", "budget", "expected"),
    [(1, False, "file"), (2, False, "longest"), (1, True, "cheapest"), (4, True, "cheapest")],
)
def test_order_auto(jobs, budget, expected):
    assert run_order("auto", jobs=jobs, budget=budget) == expected
    assert run_order("file", jobs=jobs, budget=budget) == "file"


def test_estimates_of_what_is_left_and_of_a_first_epoch():
    """What the order and the budget read (``harness.cost.estimate.run_seconds``): the epochs a
    checkpoint holds are not counted again; a run's next epoch is its start-up, its features (a
    recipe's first seed only), that epoch and the test set."""
    from types import SimpleNamespace

    from harness.cost.estimate import run_seconds
    from harness.cost.run_cost import RunSeconds

    estimate = SimpleNamespace(here=RunSeconds(overhead=10.0, features=5.0, epoch=10.0, test=2.0), gpu=None, epochs=10)
    assert run_seconds(estimate) == 10 + 5 + 100 + 2
    assert run_seconds(estimate, done_epochs=7) == 10 + 5 + 30 + 2  # a checkpoint at epoch 7
    assert run_seconds(estimate, done_epochs=7, epochs=8, first_seed=False) == 10 + 10 + 2  # its next epoch
    assert run_seconds(estimate, on="gpu") is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2h30m", 9000), ("45m", 2700), ("90s", 90), ("1.5h", 5400), ("1h2m3s", 3723), (" 2H ", 7200)],
)
def test_time_budget_durations(text, seconds):
    assert Duration().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["15", "2x", "", "h", "0m", "30m2h", "-5m"])
def test_bad_time_budgets_are_refused(text):
    with pytest.raises(click.BadParameter):
        Duration().convert(text, None, None)


def test_a_bad_time_budget_is_one_line_before_anything(test_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--config", str(test_config), "run", "tiny-a", "--time-budget", "2 hours"])
    assert result.exit_code == 2 and "is not a duration" in result.output
    assert not (tmp_path / "mlflow.db").exists()


def test_the_summary_says_what_the_budget_left_and_how_to_continue(tmp_path, synthetic_npz, test_config, monkeypatch):
    import harness.sweep.sweep

    config = load_config(test_config)
    a0, a1 = tiny_runs(seeds=(0, 1), names=("tiny-a",))(config)
    report = SweepReport(
        outcomes=[
            Outcome(spec=a0, status="PAUSED", reason="paused", epochs_done=12, epochs_planned=30),
            Outcome(spec=a1, status="LEFT", reason=executors.NO_ROOM),
        ],
        budget_spent=True,
        seconds_left={a0.identity.identity: 1800.0, a1.identity.identity: 3600.0},
    )
    monkeypatch.setattr(harness.sweep.sweep, "run_sweep", lambda *args, **kwargs: report)
    monkeypatch.chdir(tmp_path)
    arguments = ["--config", str(test_config), "--data", str(synthetic_npz), "run", "tiny-a", "--seeds", "2"]
    result = CliRunner().invoke(main, [*arguments, "--profile", "smoke", "--time-budget", "2h30m"])
    assert result.exit_code == EXIT_BUDGET == 4, result.output
    assert "Time budget (2.5 h) reached: 0 run(s) finished in it." in result.output
    assert "paused tiny-a seed 0 after epoch 12 of 30 (checkpoint kept)" in result.output
    assert "not started: tiny-a seed 1" in result.output and "about 1.5 h of training left" in result.output
    again = " ".join(["bench", *arguments, "--profile", "smoke", "--time-budget", "2h30m"])
    assert f"Continue with: {again}" in result.output


def test_a_time_budget_caps_what_a_long_sweep_asks_to_be_confirmed_for():
    """A sweep estimated at days asks first (--yes), unless its time budget stops it sooner: then
    it is expected to take the budget, and a budget under a day asks nothing."""
    from harness.sweep.sweep import LONG_SWEEP_SECONDS, expected_seconds

    seconds = {"a": 3 * 86400.0, "b": 86400.0}
    assert expected_seconds(seconds, 2, None) == 2 * 86400.0 > LONG_SWEEP_SECONDS
    assert 3590.0 < expected_seconds(seconds, 2, time.time() + 3600.0) <= 3600.0
    assert expected_seconds(seconds, 2, time.time() + 30 * 86400.0) == 2 * 86400.0
    assert expected_seconds(seconds, 2, time.time() - 5.0) == 0.0
