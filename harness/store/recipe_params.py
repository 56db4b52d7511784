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
from harness.store.schema import (
    PARAM_PRECISION,
    PARAM_REPORTED_ACCURACY,
    PARAM_REPORTED_PARAMS,
    PARAM_WEIGHTS,
    PARAM_WHAT_CHANGED,
)

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
        PARAM_WHAT_CHANGED: what_changed(config, recipe),
    }
    return truncated(params)


def built_from(recipe: Recipe) -> str | None:
    """The step ``recipe`` was built from: its ``previous`` (read from the report; its ``base``,
    the recipe it inherits its training from, where the recipe names none). Report 004's step 3
    inherits step 1's training but adds BatchNorm to step 2."""
    return recipe.previous


def trained_settings(recipe: Recipe) -> dict[str, str]:
    """What gets trained, flattened as params are: architecture (and its options), augmentation,
    training, and each callback's options under ``callbacks.<kind>``."""
    training = asdict(recipe.training)
    training["optimizer_options"] = dict(recipe.training.optimizer_options)
    settings = {
        "architecture": recipe.architecture,
        **flatten("architecture_options", dict(recipe.architecture_options)),
        "augmentation": recipe.augmentation,
        **flatten("training", training),
    }
    for callback in recipe.callbacks:
        settings[f"callbacks.{callback.kind}"] = ", ".join(f"{k}={v}" for k, v in dict(callback.options).items())
    return {key: value for key, value in settings.items() if value != "{}" or not key.endswith("_options")}


def what_changed(config: BenchConfig, recipe: Recipe) -> str:
    """The recipe's summary and, for a step, every trained setting that differs from the step it
    was built from (``built_from``), e.g. 'Adds BatchNorm after every conv. vs r004-step2:
    architecture r004_step2 → r004_step3'. One line, so the compare view of two parents says
    what changed even where the architecture's name is all that differs."""
    previous = built_from(recipe)
    if previous is None or previous not in config.recipes:
        return recipe.summary
    mine, theirs = trained_settings(recipe), trained_settings(config.recipes[previous])
    differences = []
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) == theirs.get(key):
            continue
        if key.startswith("callbacks.") and key not in theirs:
            differences.append(f"adds {key.removeprefix('callbacks.')} ({mine[key]})")
        elif key.startswith("callbacks.") and key not in mine:
            differences.append(f"drops {key.removeprefix('callbacks.')}")
        else:
            differences.append(f"{key} {theirs.get(key, '–')} → {mine.get(key, '–')}")
    return f"{recipe.summary} vs {previous}: {'; '.join(differences) or 'the same trained settings'}"


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
