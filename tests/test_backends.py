"""The harness under the other Keras backends: same sweep, same MLflow layout, no TensorFlow needed
in the worker. Each installed backend is smoke-tested; a missing one is skipped with the reason."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow  # trains models in worker processes or starts servers


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_smoke_sweep_under_backend(backend, tmp_path, synthetic_npz, test_config, shared_sweep):
    """`bench all --profile smoke --seeds 1` under the backend (for JAX the session's shared
    sweep, copied here: tests/conftest.py SHARED_SWEEPS)."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"Keras backend {backend!r} is not installed (pip install {backend})")
    if backend == "jax":
        shared = shared_sweep("jax")
        assert shared.exit_code == 0, shared.output
    else:
        environment = {**os.environ, "KERAS_BACKEND": backend}
        command = [sys.executable, "-m", "harness.cli", "--config", str(test_config), "--data", str(synthetic_npz)]
        sweep = subprocess.run(
            [*command, "all", "--profile", "smoke", "--seeds", "1"],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert sweep.returncode == 0, sweep.stdout + sweep.stderr

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    children = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["bench.kind"] == "child"]
    assert sorted(r.data.tags["bench.recipe"] for r in children) == ["tiny-a", "tiny-b"]  # tiny-b is augmented
    for child in children:
        assert child.info.status == "FINISHED" and child.data.params["keras_backend"] == backend
        assert {"accuracy/test", "accuracy/validation", "time/epoch_seconds"} <= set(child.data.metrics)
        assert child.data.params["model.params"] == "92074"
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"confusion_matrix.png", "confusion_matrix.csv", "model_summary.txt", "result.json"} <= artifacts


RECALIBRATE = """
import numpy as np, keras
from keras import layers
from harness.run.batch_norm import recalibrate_batch_norm
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).random((64, 8, 8, 3)).astype("float32")
body = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu", name="conv"),
    layers.BatchNormalization(name="bn"), layers.Dropout(0.5), layers.Flatten(), layers.Dense(10, activation="softmax")])
model = keras.Sequential([keras.Input((8, 8, 3)), layers.RandomFlip("horizontal"), body])
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(x, np.arange(64) % 10, batch_size=16, epochs=1, verbose=0)
assert recalibrate_batch_norm(model, x, batch_size=16, images=64, seed=1) == 1
conv = np.asarray(keras.ops.convert_to_numpy(body.get_layer("conv")(x))).reshape(-1, 4)
moving = keras.ops.convert_to_numpy(body.get_layer("bn").moving_mean)
np.testing.assert_allclose(moving, conv.mean(axis=0), rtol=1e-4, atol=1e-5)
print("recalibrated under", keras.backend.backend())
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_batch_norm_recalibration_under_backend(backend):
    """Recalibration uses Keras APIs only: under another backend it recomputes the statistics too."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"Keras backend {backend!r} is not installed (pip install {backend})")
    environment = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", RECALIBRATE], env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"recalibrated under {backend}" in done.stdout
