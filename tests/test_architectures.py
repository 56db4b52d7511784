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
