"""A sweep as a library function: no Click, a tracker, settings and a progress object."""

from __future__ import annotations

import pytest

from harness.config import load_config
from harness.errors import HarnessError
from harness.store.tracking import Tracker
from harness.sweep.executors import Progress
from harness.sweep.plan import SweepSettings
from harness.sweep.sweep import run_sweep

pytestmark = pytest.mark.slow  # trains models in worker processes or starts servers


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def note(self, message):
        self.events.append(("note", message))

    def epoch_done(self, spec, epoch, logs):
        self.events.append(("epoch", spec.label, epoch))

    def run_ended(self, outcome):
        self.events.append(("ended", outcome.spec.label, outcome.status))


def test_run_sweep_without_click_trains_then_skips(tmp_path, test_config, synthetic_npz):
    config = load_config(test_config)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = SweepSettings(profile="smoke", seeds=1, data_path=str(synthetic_npz))
    progress = Recorder()
    report = run_sweep(config, tracker, [config.recipe("tiny-a")], settings, progress)
    [outcome] = report.outcomes
    assert outcome.status == "FINISHED" and 0 <= outcome.test_accuracy <= 1
    assert ("epoch", "tiny-a seed 0", 1) in progress.events and (
        "ended",
        "tiny-a seed 0",
        "FINISHED",
    ) in progress.events
    assert ("note", "Checking the dataset …") in progress.events

    again = run_sweep(config, tracker, [config.recipe("tiny-a")], settings)
    assert [o.status for o in again.outcomes] == ["SKIPPED"]


def test_run_sweep_refuses_an_empty_selection(tmp_path, test_config):
    config = load_config(test_config)
    with pytest.raises(HarnessError, match="no recipe matches"):
        run_sweep(config, Tracker(f"sqlite:///{tmp_path / 'm.db'}"), [], SweepSettings())


def test_stop_signals_land_between_the_sweep_loops_waits():
    """A stop signal inside concurrent.futures.wait could leave a future's lock held and hang
    the sweep: while the loop runs, a signal is only recorded, and the installed handler runs
    when the loop asks (or when it ends); an ignored signal (nohup) stays ignored; the handlers
    are put back after."""
    import os
    import signal
    import time

    from harness.sweep.executors import deferred_stop_signals

    calls = []

    def handler(signum, frame):
        calls.append(signum)
        raise KeyboardInterrupt("stop")

    previous = signal.signal(signal.SIGTERM, handler)
    ignored = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt), deferred_stop_signals() as deliver:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # delivered to this process: recorded, nothing raised yet
            assert calls == []
            deliver()
        assert calls == [signal.SIGTERM] and signal.getsignal(signal.SIGTERM) is handler
        with pytest.raises(KeyboardInterrupt), deferred_stop_signals():
            os.kill(os.getpid(), signal.SIGTERM)  # after the loop's last check: raised as it ends
            time.sleep(0.2)
        assert calls == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGHUP, ignored)
