"""The MLflow layout against a real sqlite store in tmp_path."""

from __future__ import annotations

import pytest

from harness.identity import RunIdentity
from harness.schema import TAG_ERROR, TAG_PARENT
from harness.tracking import Tracker


@pytest.fixture
def tracker(tmp_path):
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")


def identity(seed: int, config_hash: str = "abc") -> RunIdentity:
    return RunIdentity(
        recipe="tiny-a", profile="smoke", seed=seed, config_hash=config_hash, data_fingerprint="fp", report="r.txt"
    )


def test_artifacts_go_next_to_the_database(tracker, tmp_path):
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlruns").as_uri()


def test_parent_child_identity_and_aggregates(tracker):
    parent = tracker.parent_run(identity(0), description="baseline")
    assert tracker.parent_run(identity(1), description="baseline") == parent  # same group, one parent
    assert tracker.parent_run(identity(0, "new"), description="x") != parent  # changed recipe, new group
    for seed, accuracy in [(0, 0.5), (1, 0.7)]:
        child = tracker.child_run(identity(seed), parent)
        assert tracker.client.get_run(child).data.tags[TAG_PARENT] == parent
        tracker.log_metrics(child, {"test_accuracy": accuracy})
        tracker.client.set_terminated(child, "FINISHED")
    failed = tracker.child_run(identity(2), parent)
    tracker.fail(failed, "diverged at epoch 3")
    run = tracker.client.get_run(failed)
    assert run.info.status == "FAILED" and run.data.tags[TAG_ERROR] == "diverged at epoch 3"

    assert tracker.finished_identities() == {identity(0).identity, identity(1).identity}
    metrics = tracker.update_parent(parent, identity(0).group)
    assert metrics["n"] == 2
    assert metrics["test_accuracy_mean"] == pytest.approx(0.6)
    assert metrics["test_accuracy_std"] == pytest.approx(0.1414213562)
    assert tracker.client.get_run(parent).info.status == "FINISHED"


def test_fail_never_overwrites_a_finished_run(tracker):
    parent = tracker.parent_run(identity(0), description="")
    child = tracker.child_run(identity(0), parent)
    tracker.client.set_terminated(child, "FINISHED")
    tracker.fail(child, "late failure")
    assert tracker.client.get_run(child).info.status == "FINISHED"
