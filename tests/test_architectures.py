"""Every registered model: 32×32×3 in, 10-way softmax out, the report's parameter count, no NaN."""

from __future__ import annotations

import numpy as np
import pytest

import architectures
from architectures.registry import register
from harness.config import load_config
from tests.conftest import REAL_CONFIG

RECIPES = list(load_config(REAL_CONFIG).recipes.values())


@pytest.mark.parametrize("name", architectures.names())
def test_builds_and_predicts(name):
    import keras

    model = architectures.build(name)
    assert isinstance(model, keras.Model)
    assert tuple(model.input_shape[1:]) == (32, 32, 3)
    assert model.output_shape[-1] == 10
    assert model.layers[-1].get_config().get("activation") == "softmax"
    probabilities = np.asarray(
        model.predict(np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32), verbose=0)
    )
    assert probabilities.shape == (2, 10) and not np.isnan(probabilities).any()
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r.reported.params], ids=lambda r: r.name)
def test_parameter_count_matches_report(recipe):
    assert architectures.build(recipe.architecture).count_params() == recipe.reported.params


def test_every_recipe_architecture_is_registered():
    assert {r.architecture for r in RECIPES} <= set(architectures.names())


def test_duplicate_name_is_an_error():
    with pytest.raises(ValueError, match="already registered under the name 'r004_step1'"):
        register("r004_step1")(lambda **_: None)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(KeyError, match="Did you mean: r004_step1"):
        architectures.get("r004-step1")


def test_bad_name_is_rejected():
    with pytest.raises(ValueError, match="Received: name='Bad-Name'"):
        register("Bad-Name")(lambda **_: None)


TRANSFER = [name for name in architectures.names() if architectures.get(name).backbone is not None]
# Non-trainable parameter counts as report 003 prints them (the frozen part of each fine-tuned model).
PRINTED_NON_TRAINABLE = {"r003_vgg16_finetune": 7_636_032, "r003_densenet121_finetune": 6_398_656}


def test_transfer_models_are_registered_with_a_known_backbone():
    from harness.run.weights import BACKBONES

    assert len(TRANSFER) == 7
    assert all(architectures.get(name).backbone in BACKBONES for name in TRANSFER)


@pytest.mark.parametrize("name", sorted(PRINTED_NON_TRAINABLE))
def test_fine_tuned_models_freeze_what_the_report_froze(name):
    model = architectures.build(name)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert model.count_params() - trainable == PRINTED_NON_TRAINABLE[name]


@pytest.mark.parametrize("name", ["r002_proyecto_10", "r003_tl_basic"])
def test_frozen_models_split_into_backbone_features_and_head(name):
    entry = architectures.get(name)
    whole = entry.build()
    features, head = entry.build(part="features"), entry.build(part="head")
    assert features.count_params() + head.count_params() == whole.count_params()
    assert not features.trainable_weights
    assert tuple(features.output_shape[1:]) == tuple(head.input_shape[1:])
    with pytest.raises(ValueError, match="part must be one of"):
        entry.build(part="backbone")


def test_imagenet_preprocessing_adds_no_parameters():
    plain = architectures.build("r002_proyecto_10")
    imagenet = architectures.build("r002_proyecto_10", preprocessing="imagenet")
    assert plain.count_params() == imagenet.count_params()
    x = np.full((1, 32, 32, 3), 0.5, dtype=np.float32)
    assert not np.allclose(plain.predict(x, verbose=0), imagenet.predict(x, verbose=0))
