"""One training run in-process: determinism, budgets, divergence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.config import load_config
from harness.data import prepare_split, synthetic_cifar10
from harness.train import Diverged, planned_epochs, train_and_evaluate


@pytest.fixture(scope="module")
def split():
    data = synthetic_cifar10(train=300, test=100, seed=1)
    return prepare_split(data, validation_size=60, split_seed=0)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    from tests.conftest import TEST_CONFIG

    path = tmp_path_factory.mktemp("config") / "benchmarks.toml"
    path.write_text(TEST_CONFIG)
    return load_config(path)


def test_same_seed_same_result_different_seed_different_result(config, split):
    recipe, profile = config.recipes["tiny-a"], config.profiles["smoke"]
    first = train_and_evaluate(recipe, profile, split, seed=3, augmentation={})
    again = train_and_evaluate(recipe, profile, split, seed=3, augmentation={})
    other = train_and_evaluate(recipe, profile, split, seed=4, augmentation={})

    def learned(result):
        return {k: v for k, v in result.history.items() if k != "epoch_seconds"}

    assert learned(first) == learned(again) and first.confusion == again.confusion
    assert learned(first) != learned(other)
    assert first.epochs_run == planned_epochs(recipe, profile) == 1
    assert first.params == 92074 and sum(map(sum, first.confusion)) == len(split.y_test)


def test_nan_loss_is_reported_as_divergence(config, split):
    import dataclasses

    import architectures
    from architectures.registry import _REGISTRY, register

    @register("test_nan_model")
    def test_nan_model(*, input_shape=(32, 32, 3), num_classes=10):
        import keras

        inputs = keras.Input(shape=input_shape)
        logits = keras.layers.Dense(num_classes)(keras.layers.Flatten()(inputs))
        poisoned = keras.layers.Lambda(lambda x: x * np.float32("nan"))(logits)
        return keras.Model(inputs, keras.layers.Activation("softmax")(poisoned))

    try:
        recipe = dataclasses.replace(config.recipes["tiny-a"], architecture="test_nan_model")
        with pytest.raises(Diverged, match="diverged at epoch 1"):
            train_and_evaluate(recipe, config.profiles["smoke"], split, seed=0, augmentation={})
    finally:
        _REGISTRY.pop("test_nan_model")
    assert "test_nan_model" not in architectures.names()


def test_evaluation_batch_shrinks_for_models_that_upsample_inside():
    import keras
    from keras import layers

    from harness.train import ACTIVATION_BUDGET, EVALUATION_BATCH, evaluation_batch

    small = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(64, 3, padding="same"), layers.Flatten()])
    assert evaluation_batch(small, 64) == EVALUATION_BATCH

    inner = keras.Sequential([keras.Input((224, 224, 3)), layers.Conv2D(64, 3, padding="same")], name="backbone")
    upsampling = keras.Sequential([keras.Input((32, 32, 3)), layers.Resizing(224, 224), inner, layers.Flatten()])
    batch = evaluation_batch(upsampling, 32)  # the largest output is inside the nested backbone
    assert batch == ACTIVATION_BUDGET // (224 * 224 * 64) == 83
    assert evaluation_batch(upsampling, 128) == 128  # never below what training already fitted


def test_several_steps_per_execution_change_no_number(config, split, monkeypatch):
    """STEPS_PER_EXECUTION only batches the dispatch of train steps: the same seed gives the same
    losses, accuracies and confusion matrix as one step per call (augmented recipe included)."""
    import harness.train

    recipe = config.recipes["tiny-b"]
    augmentation = config.augmentation(recipe.augmentation)
    profile = dataclasses.replace(config.profiles["smoke"], max_epochs=2)
    batched = train_and_evaluate(recipe, profile, split, seed=1, augmentation=augmentation)
    monkeypatch.setattr(harness.train, "STEPS_PER_EXECUTION", 1)
    single = train_and_evaluate(recipe, profile, split, seed=1, augmentation=augmentation)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert batched.history[key] == single.history[key], key
    assert (batched.test_accuracy, batched.test_loss, batched.confusion) == (
        single.test_accuracy,
        single.test_loss,
        single.confusion,
    )
