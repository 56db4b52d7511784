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
