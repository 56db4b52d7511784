"""What a sweep will do: its settings, and the list of runs (recipe × seed) it plans.

Planning needs only the configuration and the data's fingerprint: no Keras, no MLflow. Each
planned run carries its ``RunIdentity`` (``harness.identity``), which decides whether it is
already finished.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import BenchConfig, Recipe
from harness.identity import RunIdentity, Variant, identify

EXECUTORS = ("local", "ray")
JIT_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class SweepSettings:
    """How to run a sweep: the budget, the seeds, where and how runs train."""

    profile: str = "full"
    seeds: int = 3  # seeds 0 … seeds-1 per recipe
    jobs: int = 1  # runs training at once, each in its own process
    variant: Variant = Variant()  # precision and random weights: part of each run's identity
    jit_compile: str = "auto"  # XLA: Keras decides (auto), or on / off
    executor: str = "local"  # local worker processes, or Ray tasks
    address: str | None = None  # Ray cluster to join (None: start a local one)
    gpus_per_run: float = 0.0  # Ray: the GPU share each run asks for
    data_path: str | None = None  # None: $BENCH_DATA, else Keras' download
    weights_dir: str | None = None  # pretrained backbone weights, for offline use
    system_metrics: bool = False  # log CPU/memory/GPU use as system/* metrics of each run
    log_model: bool = False  # log each trained Keras model to MLflow (large: off by default)


@dataclass(frozen=True)
class RunSpec:
    """One planned run: a recipe trained with one seed under one profile."""

    recipe: Recipe
    identity: RunIdentity

    @property
    def profile(self) -> str:
        return self.identity.profile

    @property
    def seed(self) -> int:
        return self.identity.seed

    @property
    def label(self) -> str:
        """How a person names this run: 'r004-step1 seed 0'."""
        return f"{self.recipe.name} seed {self.seed}"


def plan(
    config: BenchConfig,
    recipes: list[Recipe],
    *,
    profile: str,
    seeds: list[int],
    data_fingerprint: str,
    variant: Variant = Variant(),
) -> list[RunSpec]:
    """Every (recipe, seed) under ``profile``, in file order then seed order."""
    config.profile(profile)  # an unknown profile is a ConfigError here, before anything else
    return [
        RunSpec(recipe=recipe, identity=identify(config, recipe, profile, seed, data_fingerprint, variant))
        for recipe in recipes
        for seed in seeds
    ]
