"""Stand-ins for MLflow child runs and the tracker that serves them, so leaderboard and step
statistics are tested on exact numbers without a store."""

from __future__ import annotations

from types import SimpleNamespace

from harness.results.leaderboard import Row, collect_rows
from harness.store.schema import (
    METRIC_TEST_ACCURACY,
    PARAM_PARAMS,
    PARAM_REPORTED_ACCURACY,
    TAG_CONFIG_HASH,
    TAG_GROUP,
    TAG_IDENTITY,
    TAG_PROFILE,
    TAG_RECIPE,
    TAG_SEED,
)


def run(recipe: str, seed: int, accuracy: float | None, *, status="FINISHED", reported=None, profile="p"):
    metrics = {} if accuracy is None else {METRIC_TEST_ACCURACY: accuracy}
    return SimpleNamespace(
        info=SimpleNamespace(
            run_id=f"{recipe}-{seed}-{status}-{accuracy}",
            status=status,
            start_time=seed,
            end_time=1_700_000_000_000 + seed,
        ),
        data=SimpleNamespace(
            tags={
                TAG_RECIPE: recipe,
                TAG_PROFILE: profile,
                TAG_SEED: str(seed),
                TAG_GROUP: f"{recipe}-{profile}",
                TAG_IDENTITY: f"{recipe}-{profile}-{seed}",
                TAG_CONFIG_HASH: "h",
            },
            params={PARAM_REPORTED_ACCURACY: str(reported), PARAM_PARAMS: "1000"},
            metrics=metrics,
        ),
    )


class StandInTracker:
    def __init__(self, runs):
        self.runs = runs

    def child_runs(self, profile=None):
        return [r for r in self.runs if profile is None or r.data.tags[TAG_PROFILE] == profile]


def runs_of(recipe, values, **options):
    return [run(recipe, seed, value, **options) for seed, value in enumerate(values)]


def board(values_by_recipe: dict[str, list[float]]) -> dict[str, Row]:
    runs = [r for name, values in values_by_recipe.items() for r in runs_of(name, values)]
    return {row.recipe: row for row in collect_rows(StandInTracker(runs))}


def log_run(tracker, config, name: str, seed: int, value: float, *, profile: str = "smoke"):
    """One finished child run in a real store, as a sweep would leave it (identity, parent, claim,
    test accuracy), without training. Returns its identity."""
    from harness.identity import identify

    recipe = config.recipe(name)
    identity = identify(config, recipe, profile, seed, "synthetic-data")
    parent = tracker.parent_run(identity, description=recipe.summary)
    child = tracker.child_run(identity, parent)
    tracker.log_params(child, {PARAM_REPORTED_ACCURACY: str(recipe.reported.test_accuracy)})
    tracker.log_metrics(child, {METRIC_TEST_ACCURACY: value})
    tracker.finish(child)
    return identity


def log_runs(tracker, config, values_by_recipe: dict[str, list[float]], *, profile: str = "smoke"):
    """``log_run`` for seeds 0, 1, … of each recipe."""
    for name, values in values_by_recipe.items():
        for seed, value in enumerate(values):
            log_run(tracker, config, name, seed, value, profile=profile)
