"""--executor ray against a local Ray instance: the same MLflow layout and results as local runs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from harness.cli import main
from tests.conftest import SMOKE_SWEEP

pytestmark = pytest.mark.slow  # trains models in worker processes or starts servers

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'cifar10-bench[ray]')")


def layout(store: str) -> dict:
    """Per (kind, recipe, seed): status, test accuracy, metric names and artifact names."""
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("cifar10-bench")
    found = {}
    for run in client.search_runs([experiment.experiment_id]):
        tags = run.data.tags
        key = (tags["bench.kind"], tags.get("bench.recipe"), tags.get("bench.seed"))
        artifacts = sorted(a.path for a in client.list_artifacts(run.info.run_id))
        found[key] = (run.info.status, run.data.metrics.get("accuracy/test"), sorted(run.data.metrics), artifacts)
    return found


@pytest.fixture
def local_ray():
    """A new local Ray instance (address "local"): with no address, ray.init joins the cluster
    the last one left in /tmp/ray (test_ray_cluster's, shut down a moment before, once made this
    fail with "When connecting to an existing cluster, num_cpus … must not be provided")."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_sweep_matches_the_local_one(tmp_path, synthetic_npz, test_config, monkeypatch, local_ray, smoke_sweep):
    """SMOKE_SWEEP through Ray gives the runs the local executor gave (the session's shared sweep,
    copied into tmp_path): the same runs, numbers, metrics and artifacts."""
    assert smoke_sweep.exit_code == 0 and "4 trained" in smoke_sweep.output, smoke_sweep.output
    folder = tmp_path / "ray"
    folder.mkdir()
    monkeypatch.chdir(folder)
    arguments = ["--config", str(test_config), "--data", str(synthetic_npz), *SMOKE_SWEEP, "--executor", "ray"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert "4 trained" in result.output
    local, remote = layout(smoke_sweep.store), layout(f"sqlite:///{folder / 'mlflow.db'}")
    assert set(local) == set(remote) and len([k for k in local if k[0] == "child"]) == 4
    for key, (status, accuracy, metrics, artifacts) in local.items():
        assert remote[key][0] == status == "FINISHED"
        assert remote[key][1] == accuracy  # same seed, same data, same numbers
        assert remote[key][2] == metrics and remote[key][3] == artifacts


def test_a_second_interrupt_stops_ray_runs_at_once(tmp_path, test_config, local_ray):
    """A second Ctrl-C while runs stop calls ``stop(grace=0)``; RayExecutor.stop took no grace,
    so the second Ctrl-C raised TypeError instead of stopping the runs."""
    from harness.config import load_config
    from harness.store.tracking import Tracker
    from harness.sweep.plan import SweepSettings
    from harness.sweep.ray_executor import RayExecutor

    config = load_config(test_config)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    executor = RayExecutor(config, tracker, SweepSettings(profile="smoke", executor="ray"))
    executor.stop(grace=0)
    assert executor._stopping.is_set()
