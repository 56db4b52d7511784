"""A recipe's settings as MLflow params: flat ``a.b.c`` strings, the form MLflow compares across runs.

The parent run of a recipe and each of its seeds log the same flattened settings from here, so
the compare view of two parents shows what differs between two recipes, and the compare view of
two seeds shows that nothing but the seed does.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from harness.config import BenchConfig, Profile, Recipe
from harness.identity import RunIdentity
from harness.schema import PARAM_PRECISION, PARAM_REPORTED_ACCURACY, PARAM_REPORTED_PARAMS, PARAM_WEIGHTS

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """Nested dicts/lists → flat ``a.b.c`` params; a list of plain values stays one JSON param."""
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat.update(flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return flat
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        flat = {}
        for index, inner in enumerate(value):
            flat.update(flatten(f"{prefix}.{index}", inner))
        return flat
    return {prefix: json.dumps(value) if isinstance(value, (list, tuple)) else str(value)}


def recipe_params(config: BenchConfig, recipe: Recipe, profile: Profile) -> dict[str, str]:
    """Everything that is the same for every seed of ``recipe`` under ``profile``: architecture,
    training, callbacks, augmentation values, the profile's caps, the data split, where the
    recipe comes from and what its report claims."""
    training = asdict(recipe.training)
    training["optimizer_options"] = dict(recipe.training.optimizer_options)
    params = {
        "recipe": recipe.name,
        "architecture": recipe.architecture,
        "augmentation": recipe.augmentation,
        **flatten("training", training),
        **flatten("callbacks", [{"kind": c.kind, **dict(c.options)} for c in recipe.callbacks]),
        **flatten("augmentation_values", config.augmentation(recipe.augmentation)),
        **flatten("profile", asdict(profile)),
        **flatten("data", asdict(config.data)),
        "source.report": recipe.source.report,
        "source.section": recipe.source.section,
        PARAM_REPORTED_ACCURACY: str(recipe.reported.test_accuracy),
        PARAM_REPORTED_PARAMS: str(recipe.reported.params),
    }
    return truncated(params)


def parent_params(config: BenchConfig, recipe: Recipe, identity: RunIdentity) -> dict[str, str]:
    """A parent run's params: the recipe's flattened settings under its profile and the variant's
    precision (and random weights): what the compare view of two parents shows."""
    params = recipe_params(config, recipe, config.profile(identity.profile))
    params[PARAM_PRECISION] = identity.variant.precision
    if identity.variant.random_weights:
        params[PARAM_WEIGHTS] = "random initialisation (--random-weights, for tests only)"
    return truncated(params)


def truncated(params: dict[str, str]) -> dict[str, str]:
    """Values cut to what MLflow accepts."""
    return {key: str(value)[:MAX_PARAM_LENGTH] for key, value in params.items()}
