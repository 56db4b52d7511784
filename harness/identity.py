"""What makes two runs "the same": the one place that decides a run's identity.

A run is identified by its recipe, profile, seed, the data it read (fingerprint) and a config
hash over everything else that decides its result: the recipe's training, the augmentation
values, the profile's caps, the data split, and the ``Variant`` it was trained under (mixed
precision, random backbone weights). A sweep skips a run whose identity already FINISHED, the
worker re-checks the hash before training, and the leaderboard shows only a recipe's current
hash. Adding a field that changes results means adding it to ``Variant`` (or to the recipe)
here, and nowhere else.

Hashes are stable across releases: a field at its default value is left out of the hash, so
existing stores keep matching.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from harness.config import BenchConfig, Profile, Recipe
from harness.store.schema import (
    KIND_CHILD,
    TAG_CONFIG_HASH,
    TAG_DATA,
    TAG_DEVICE,
    TAG_GROUP,
    TAG_IDENTITY,
    TAG_KIND,
    TAG_PROFILE,
    TAG_RECIPE,
    TAG_REPORT,
    TAG_SEED,
)

PRECISIONS = ("float32", "tf32", "mixed_float16", "mixed_bfloat16")  # tf32: float32 with TF32 matmuls
# Profile settings added after the first release: hashed only where set, so every profile
# without them keeps the hashes existing stores hold.
PROFILE_SETTINGS_HASHED_WHEN_SET = ("epoch_fraction", "bn_recalibration_images")


@dataclass(frozen=True)
class Variant:
    """How a sweep trains its recipes beyond what the recipe says; each non-default value is a
    different identity, so such runs are never pooled with the default ones (the leaderboard
    pools devices only when asked)."""

    precision: str = "float32"
    random_weights: bool = False  # backbones built without their pretrained weights (tests only)
    device: str = "cpu"  # cpu | gpu: the hardware class; GPU runs are not bit-identical to CPU ones
    backend: str = "tensorflow"  # the Keras backend
    deterministic: bool = False  # op determinism asked for (--deterministic)

    def for_recipe(self, recipe: Recipe) -> Variant:
        """The variant as it applies to ``recipe``: random weights only matter where there is a
        pretrained backbone to leave out."""
        return replace(self, random_weights=self.random_weights and is_transfer(recipe))

    def hashed(self) -> dict[str, Any]:
        """The fields that differ from the default: what the config hash covers (so that runs
        of the default variant keep the hashes every existing store holds)."""
        return {k: v for k, v in asdict(self).items() if v != getattr(DEFAULT_VARIANT, k)}


DEFAULT_VARIANT = Variant()


def is_transfer(recipe: Recipe) -> bool:
    """Whether the recipe's architecture wraps a pretrained backbone."""
    import architectures

    return architectures.get(recipe.architecture).backbone is not None


def config_hash(config: BenchConfig, recipe: Recipe, profile: Profile, variant: Variant = Variant()) -> str:
    """Hash of all that decides a run's result except the seed and the data itself.

    Covers the recipe's training identity, the augmentation preset's values, the profile's
    caps (and its BatchNorm recalibration, where set) and the data split settings. Changing any of them gives the recipe a new identity,
    so old results are never reused for it. Random backbone weights and a mixed precision are
    different identities too: never pooled with full-precision, pretrained runs.
    """
    payload: dict[str, Any] = {
        "recipe": recipe.training_identity(),
        "augmentation_values": config.augmentation(recipe.augmentation),
        "profile": {
            k: v
            for k, v in asdict(profile).items()
            if k != "description" and not (k in PROFILE_SETTINGS_HASHED_WHEN_SET and v is None)
        },
        "data": asdict(config.data),
        **variant.for_recipe(recipe).hashed(),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def current_hashes(config: BenchConfig, profile: str | None, variant: Variant = Variant()) -> dict[str, str]:
    """Each recipe's config hash now, under ``profile`` and ``variant`` (empty for an unknown or
    no profile): the leaderboard shows only runs with these hashes."""
    if profile is None or profile not in config.profiles:
        return {}
    chosen = config.profiles[profile]
    return {name: config_hash(config, recipe, chosen, variant) for name, recipe in config.recipes.items()}


def group_key(recipe: str, profile: str, config_hash: str, data_fingerprint: str) -> str:
    """What a parent run aggregates: all seeds of one recipe under one config, profile, data."""
    return hashlib.sha256(f"{recipe}|{profile}|{config_hash}|{data_fingerprint}".encode()).hexdigest()[:16]


def identity_key(recipe: str, profile: str, config_hash: str, data_fingerprint: str, seed: int) -> str:
    """A run's identity: at most one FINISHED run may carry it."""
    return hashlib.sha256(f"{recipe}|{profile}|{config_hash}|{data_fingerprint}|{seed}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunIdentity:
    """One (recipe, profile, seed) under one configuration and dataset; ``variant`` is already
    narrowed to the recipe (see ``Variant.for_recipe``)."""

    recipe: str
    profile: str
    seed: int
    config_hash: str
    data_fingerprint: str
    report: str
    variant: Variant = Variant()

    @property
    def group(self) -> str:
        return group_key(self.recipe, self.profile, self.config_hash, self.data_fingerprint)

    @property
    def identity(self) -> str:
        return identity_key(self.recipe, self.profile, self.config_hash, self.data_fingerprint, self.seed)

    def tags(self) -> dict[str, str]:
        """The ``bench.*`` tags of this run's child run in MLflow."""
        return {
            TAG_KIND: KIND_CHILD,
            TAG_RECIPE: self.recipe,
            TAG_PROFILE: self.profile,
            TAG_SEED: str(self.seed),
            TAG_CONFIG_HASH: self.config_hash,
            TAG_DATA: self.data_fingerprint,
            TAG_REPORT: self.report,
            TAG_IDENTITY: self.identity,
            TAG_GROUP: self.group,
            TAG_DEVICE: self.variant.device,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> RunIdentity:
        return cls(**{**fields, "variant": Variant(**fields.get("variant", {}))})


def identify(
    config: BenchConfig,
    recipe: Recipe,
    profile: str,
    seed: int,
    data_fingerprint: str,
    variant: Variant = Variant(),
) -> RunIdentity:
    """The identity of training ``recipe`` with ``seed`` under ``profile`` on this data."""
    variant = variant.for_recipe(recipe)
    return RunIdentity(
        recipe=recipe.name,
        profile=profile,
        seed=seed,
        config_hash=config_hash(config, recipe, config.profile(profile), variant),
        data_fingerprint=data_fingerprint,
        report=recipe.source.report,
        variant=variant,
    )
