"""One training run in-process: determinism, budgets, divergence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.config import load_config
from harness.run.data import prepare_split, synthetic_cifar10
from harness.run.train import TIMING_LOGS, Diverged, planned_epochs, train_and_evaluate


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
        return {k: v for k, v in result.history.items() if k not in TIMING_LOGS}

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

    from harness.run.train import ACTIVATION_BUDGET, EVALUATION_BATCH, evaluation_batch

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
    import harness.run.train

    recipe = config.recipes["tiny-b"]
    augmentation = config.augmentation(recipe.augmentation)
    profile = dataclasses.replace(config.profiles["smoke"], max_epochs=2)
    batched = train_and_evaluate(recipe, profile, split, seed=1, augmentation=augmentation)
    monkeypatch.setattr(harness.run.train, "STEPS_PER_EXECUTION", 1)
    single = train_and_evaluate(recipe, profile, split, seed=1, augmentation=augmentation)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert batched.history[key] == single.history[key], key
    assert (batched.test_accuracy, batched.test_loss, batched.confusion) == (
        single.test_accuracy,
        single.test_loss,
        single.confusion,
    )


def test_batch_norm_recalibration_leaves_a_model_without_batch_norm_bit_identical(config, split):
    """A profile that recalibrates BatchNorm changes nothing, to the bit, for a model without any."""
    from harness.run.batch_norm import recalibrate_batch_norm

    recipe = config.recipes["tiny-a"]  # r004_step1: convolutions and a dense layer, no BatchNorm
    profile = dataclasses.replace(config.profiles["smoke"], max_epochs=2)
    plain = train_and_evaluate(recipe, profile, split, seed=5, augmentation={})
    asked = dataclasses.replace(profile, bn_recalibration_images=128)
    models: list = []
    recalibrating = train_and_evaluate(recipe, asked, split, seed=5, augmentation={}, on_trained=models.append)
    assert {k: v for k, v in plain.history.items() if k not in TIMING_LOGS} == {
        k: v for k, v in recalibrating.history.items() if k not in TIMING_LOGS
    }
    assert (plain.test_accuracy, plain.test_loss, plain.confusion) == (
        recalibrating.test_accuracy,
        recalibrating.test_loss,
        recalibrating.confusion,
    )
    assert recalibrating.bn_recalibrated_layers == 0 and recalibrating.test_accuracy_before_bn_recalibration is None
    model = models[0]
    before = [w.copy() for w in model.get_weights()]
    predicted = model.predict(split.x_test, verbose=0)
    assert recalibrate_batch_norm(model, split.x_train, batch_size=64, images=128, seed=0) == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert np.array_equal(predicted, model.predict(split.x_test, verbose=0))


def test_batch_norm_recalibration_takes_a_few_steps_model_from_chance_to_well_above(config, split):
    """Eight steps of a BatchNorm CNN: the moving averages (momentum 0.99) have barely left their
    initial values, so the test set sees unnormalised activations; recomputed, the same weights
    classify well above chance (synthetic data, 10 classes)."""
    recipe = dataclasses.replace(config.recipes["tiny-a"], architecture="r004_step3")  # BatchNorm after every conv
    profile = dataclasses.replace(config.profiles["smoke"], max_epochs=2, bn_recalibration_images=256)
    result = train_and_evaluate(recipe, profile, split, seed=0, augmentation={})
    assert result.bn_recalibrated_layers == 4
    assert result.test_accuracy_before_bn_recalibration <= 0.3
    assert result.test_accuracy >= 0.45 and result.test_accuracy >= result.test_accuracy_before_bn_recalibration + 0.2
    assert result.extra["bn_recalibration_seconds"] > 0


def test_batch_norm_recalibration_is_the_plain_average_over_unaugmented_batches_in_inference_mode():
    """Each trainable BatchNorm layer gets the mean of its batch means and of its (biased) batch
    variances over the chosen training batches, measured with everything before it in inference
    mode: augmentation off (the images as they are), dropout off, earlier BatchNorm layers
    already recalibrated. A frozen BatchNorm layer (a backbone's) keeps its statistics."""
    import keras
    from keras import layers

    from harness.run.batch_norm import recalibrate_batch_norm

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((96, 8, 8, 3)).astype("float32")
    frozen = layers.BatchNormalization(name="frozen")
    frozen.trainable = False
    body = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            layers.Conv2D(4, 3, activation="relu", name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.Dropout(0.5),
            layers.Conv2D(4, 3, name="conv2"),
            frozen,
            layers.BatchNormalization(name="bn2"),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ],
        name="body",
    )
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), layers.RandomFlip("horizontal"), layers.RandomRotation(0.2), body]
    )
    frozen_before = [w.copy() for w in frozen.get_weights()]

    assert recalibrate_batch_norm(model, x, batch_size=32, images=70, seed=3) == 2  # bn1 and bn2, not the frozen one

    chosen = np.random.default_rng(3).permutation(len(x))[:64]  # ⌊70 / 32⌋ = 2 batches of 32
    batches = [np.sort(chosen)[:32], np.sort(chosen)[32:]]  # one forward chunk, split into training batches

    def plain_average(outputs):
        per_batch = [outputs[b].reshape(-1, outputs.shape[-1]) for b in batches]
        return np.mean([p.mean(axis=0) for p in per_batch], axis=0), np.mean([p.var(axis=0) for p in per_batch], axis=0)

    conv1 = keras.ops.convert_to_numpy(body.get_layer("conv1")(x))
    expected = plain_average(conv1.astype(np.float64))
    bn1 = body.get_layer("bn1")
    np.testing.assert_allclose(bn1.moving_mean.numpy(), expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), expected[1], rtol=1e-5, atol=1e-6)
    # bn2 sees conv2 of bn1's output in inference mode (with bn1's new statistics), then the frozen layer
    normalised = bn1(conv1, training=False)
    into_bn2 = keras.ops.convert_to_numpy(frozen(body.get_layer("conv2")(normalised), training=False))
    expected = plain_average(into_bn2.astype(np.float64))
    bn2 = body.get_layer("bn2")
    np.testing.assert_allclose(bn2.moving_mean.numpy(), expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn2.moving_variance.numpy(), expected[1], rtol=1e-4, atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(frozen_before, frozen.get_weights(), strict=True))
