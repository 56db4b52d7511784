"""What a parent run carries beyond its seeds' status: its description, its ``board/*`` metrics (its
row of the current leaderboard) and its seed-band figures (learning curves, mean confusion matrix).

A sweep writes them as its seeds finish and its groups close (``ParentFigures``, handed to the
executor as callbacks: an executor only runs runs), and ``bench import`` when it imports records;
the descriptions are also the lines each seed's child run opens with.
"""

from __future__ import annotations

import contextlib
import logging

from harness.store.connection import StoreError
from harness.store.schema import TAG_BOARD_ERROR, TAG_PLOT_ERROR

log = logging.getLogger(__name__)


def parent_description(spec, config) -> str:
    """The recipe, its source and claim; a budget profile's parent starts with its budget line
    (the measured agreement with `full` is added when the board is updated)."""
    from harness.results.agreement import budget_line

    budget = budget_line(config, spec.profile) if spec.profile in config.profiles else None
    return (f"{budget}\n\n" if budget else "") + _recipe_description(spec, budget=budget is not None)


def _recipe_description(spec, *, budget: bool) -> str:
    recipe = spec.recipe
    claim = (
        f" The report claims {100 * recipe.reported.test_accuracy:.2f}% test accuracy from one run"
        + (" of its training (not checked at a budget profile)." if budget else ".")
        if recipe.reported.test_accuracy is not None
        else ""
    )
    return (
        f'{recipe.name}: {recipe.summary} (report {recipe.source.report}, section "{recipe.source.section}"), '
        f"profile '{spec.profile}'.{claim} Its seeds are the child runs below; its board/* metrics are its "
        "leaderboard figures, accuracies as fractions (0.7151 = 71.51 %)."
    )


def child_description(spec) -> str:
    """The line a seed's child run opens with: which seed of which recipe, under which profile."""
    return (
        f"Seed {spec.seed} of {spec.recipe.name} ({spec.recipe.summary}) under profile '{spec.profile}'; "
        f'report {spec.recipe.source.report}, section "{spec.recipe.source.section}".'
    )


class ParentFigures:
    """A sweep's parent runs kept showing their results while it runs: ``update_boards`` after each
    finished seed (and once more when the sweep stops), ``publish_plots`` when a group's seeds have
    all ended. A store failure is raised (the sweep stops on it); any other failure is tagged on the
    parents and never costs the sweep its runs."""

    def __init__(self, config, tracker, variant) -> None:
        self.config = config
        self.tracker = tracker
        self.variant = variant

    def update_boards(self, profile: str) -> None:
        """Every parent run of ``profile`` gets the figures of its current leaderboard row that
        changed (``publish_board_metrics``): comparisons with the leader move whenever any recipe
        gains a seed."""
        from harness.identity import current_hashes
        from harness.results.leaderboard import collect_rows
        from harness.results.publish import publish_board_metrics
        from harness.results.records import RunSources, board_view, read_records, results_folder

        try:
            hashes = current_hashes(self.config, profile, self.variant)
            rows = collect_rows(self.tracker, profile=profile, current_hashes=hashes)
            # The rows are this store's; `full`'s runs to compare a budget profile with are its and the records'.
            sources = RunSources(self.tracker, read_records(results_folder(self.config.path)))
            shown = board_view(self.config, sources, rows, profile=profile, variant=self.variant)
            publish_board_metrics(self.tracker, rows, budget=shown.budget)
        except StoreError:
            raise  # the store's failure, not the board's: the sweep stops on it
        except Exception as error:  # noqa: BLE001  the board is a view of results already kept; never fail on it
            log.warning("could not update the board metrics of profile %r: %s", profile, error)
            with contextlib.suppress(Exception):
                for parent in self.tracker.parent_runs(profile).values():
                    self.tracker.set_tag(parent, TAG_BOARD_ERROR, str(error)[:500])

    def publish_plots(self, spec, parent_run_id: str) -> None:
        """The seed bands of the group ``spec`` belongs to, on its parent run."""
        from harness.results.publish import publish_parent_plots

        try:
            publish_parent_plots(
                self.tracker, parent_run_id, spec.identity.group, title=f"{spec.recipe.name} [{spec.profile}]"
            )
        except Exception as error:  # noqa: BLE001  a plot must never cost the sweep its results
            self.tracker.set_tag(parent_run_id, TAG_PLOT_ERROR, str(error)[:500])
