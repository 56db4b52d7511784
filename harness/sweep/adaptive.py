"""Adaptive seeds: spend runs where they can still change an answer.

``bench all --seeds auto --max-seeds N`` starts every selected recipe with START_SEEDS seeds,
then, round by round, adds seeds only to the recipes on either side of a question still open:
a step whose Δ against the step it was built from is not resolved (``harness.results.steps``), or a row not resolved
from the leader (``harness.results.leaderboard``). Each open question asks for the seeds its power
analysis says would resolve it, at least one more and at most double what a recipe has, never
beyond N. Rounds end when every question is resolved or can get no more seeds.

The decision (``plan_round``) is a pure function of leaderboard rows; ``run_adaptive`` runs the
rounds with ``harness.sweep.sweep.run_sweep``, so a finished identity is never retrained and
rerunning the same command resumes. The plan of every round is printed and logged as
``adaptive_plan.json`` on the profile's leaderboard run.

Adding seeds until a test turns significant inflates its false-positive rate (optional
stopping); the p-values printed after an adaptive sweep are not corrected for that.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.config import BenchConfig, Recipe
from harness.results.leaderboard import Row
from harness.results.stats import ALPHA, seeds_needed
from harness.results.steps import INSUFFICIENT, step_deltas
from harness.results.verdicts import VERDICT_INSUFFICIENT, VERDICT_NOT_RESOLVED
from harness.store.schema import ARTIFACT_ADAPTIVE_PLAN
from harness.store.tracking import Tracker
from harness.sweep.executors import Outcome, Progress, SweepReport
from harness.sweep.plan import SweepSettings

START_SEEDS = 3  # every recipe's first round
DEFAULT_MAX_SEEDS = 10


@dataclass(frozen=True)
class Question:
    """One open comparison between two recipes, and the seeds per recipe it asks for."""

    kind: str  # "step" (recipe against its previous step) | "leader" (row against the leader)
    recipe: str
    other: str  # the previous step, or the leader
    status: str  # e.g. "not resolved at n=3"
    needed: int | None  # seeds per recipe for power 0.8 (None: more than the cap, or n < 2)

    def describe(self) -> str:
        needed = f", seeds needed {self.needed}" if self.needed is not None else ""
        if self.kind == "step":
            return f"Δ {self.recipe} vs previous {self.other}: {self.status}{needed}"
        return f"{self.recipe} vs leader {self.other}: {self.status}{needed}"


@dataclass(frozen=True)
class SeedRequest:
    """A recipe's seeds after this round (seeds 0 … seeds-1), and the questions that ask for them."""

    recipe: str
    seeds: int
    finished: int  # finished seeds before this round
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RoundPlan:
    """What one round trains and why; ``left_open`` are the questions no more seeds are spent on."""

    number: int
    requests: tuple[SeedRequest, ...]
    left_open: tuple[str, ...] = ()

    def describe(self) -> str:
        """The plan as printed before the round runs."""
        if self.number == 1:
            counts = sorted({request.seeds for request in self.requests})
            each = ", ".join(map(str, counts))
            lines = [f"Adaptive seeds, round 1: {len(self.requests)} recipe(s), {each} seeds each"]
        elif not self.requests:
            lines = [f"Adaptive seeds, round {self.number}: every question resolved or out of seeds; done."]
        else:
            lines = [f"Adaptive seeds, round {self.number}: {len(self.requests)} recipe(s) get more seeds"]
            for request in self.requests:
                lines.append(f"  {request.recipe}: {request.finished} → {request.seeds} seeds")
                lines += [f"      {reason}" for reason in request.reasons]
        if self.left_open:
            lines.append("  left open:")
            lines += [f"      {reason}" for reason in self.left_open]
        return "\n".join(lines)


def open_questions(config: BenchConfig, rows: Sequence[Row], names: Collection[str]) -> list[Question]:
    """Every unresolved step Δ (step and previous step both selected) and every row not resolved from the
    leader among ``rows`` (one profile's rows of the selected recipes, ranked among themselves)."""
    selected = [row for row in rows if row.recipe in names]
    by_recipe = {row.recipe: row for row in selected}
    questions = []
    deltas = [d for d in step_deltas(config, selected, names) if d.base in names]
    for delta in deltas:
        if delta.verdict.startswith("not resolved") or delta.verdict == INSUFFICIENT:
            questions.append(Question("step", delta.recipe, delta.base, delta.verdict, delta.seeds_needed))
    # One Holm family (step_deltas compared the rows with the leader in it too): its size sets α / m.
    compared = deltas[0].family if deltas else sum(row.p_vs_leader is not None for row in selected)
    for row in selected:
        if row.leader_verdict not in (VERDICT_NOT_RESOLVED, VERDICT_INSUFFICIENT) or not row.leader:
            continue
        leader = by_recipe[row.leader]
        needed = seeds_needed(row.values, leader.values, alpha=ALPHA / max(compared, 1)).count
        status = (
            f"{row.leader_verdict} at n={row.n}"
            if row.n == leader.n
            else f"{row.leader_verdict} at n={row.n} vs {leader.n}"
        )
        questions.append(Question("leader", row.recipe, leader.recipe, status, needed))
    return questions


def seeds_tried(row: Row | None) -> int:
    """Seeds a recipe has used so far (finished or failed): seeds are 0 … k-1, so a failed seed is
    retried only by asking for more seeds than this."""
    if row is None:
        return 0
    return max(len(row.seeds) + row.failed, max(row.seeds, default=-1) + 1)


def _identical_seed_by_seed(a: Row | None, b: Row | None) -> bool:
    """Both recipes gave the same value for the same seeds: they train identically under this
    profile (e.g. an early stopping that cannot fire in its epochs), so more seeds cannot separate them."""
    return a is not None and b is not None and a.n >= 2 and a.seeds == b.seeds and a.values == b.values


def plan_round(
    config: BenchConfig,
    rows: Sequence[Row],
    names: Collection[str],
    *,
    max_seeds: int,
    number: int,
    tried: dict[str, int] | None = None,
) -> RoundPlan:
    """The next round: for each open question, both its recipes go to
    min(max_seeds, max(tried + 1, min(seeds needed, 2 × tried))); a recipe in several questions
    takes the largest. ``tried`` (default: read from ``rows``) counts the seeds each recipe has used."""
    by_recipe = {row.recipe: row for row in rows if row.recipe in names}
    tried = {name: max((tried or {}).get(name, 0), seeds_tried(by_recipe.get(name))) for name in names}
    targets: dict[str, int] = {}
    reasons: dict[str, list[str]] = {}
    left_open = []
    for question in open_questions(config, list(by_recipe.values()), names):
        pair = (question.recipe, question.other)
        if _identical_seed_by_seed(by_recipe.get(pair[0]), by_recipe.get(pair[1])):
            left_open.append(f"{question.describe()} (identical seed by seed: more seeds cannot separate them)")
            continue
        wants = {}
        for name in pair:
            aim = 2 * tried[name] if question.needed is None else min(question.needed, 2 * tried[name])
            wants[name] = min(max_seeds, max(tried[name] + 1, aim))
        if all(wants[name] <= tried[name] for name in pair):
            left_open.append(f"{question.describe()} (at --max-seeds {max_seeds})")
            continue
        for name in pair:
            if wants[name] > tried[name]:
                targets[name] = max(targets.get(name, 0), wants[name])
                reasons.setdefault(name, []).append(question.describe())
    order = [name for name in config.recipes if name in targets]
    requests = tuple(
        SeedRequest(
            recipe=name,
            seeds=targets[name],
            finished=by_recipe[name].n if name in by_recipe else 0,
            reasons=tuple(dict.fromkeys(reasons[name])),
        )
        for name in order
    )
    return RoundPlan(number=number, requests=requests, left_open=tuple(left_open))


@dataclass
class AdaptiveReport:
    """The rounds an adaptive sweep planned and the outcome of each run it touched (the latest
    attempt per run identity)."""

    rounds: list[RoundPlan] = field(default_factory=list)
    sweep: SweepReport = field(default_factory=SweepReport)

    def to_json(self, *, profile: str, max_seeds: int) -> str:
        return json.dumps(
            {
                "profile": profile,
                "start_seeds": START_SEEDS,
                "max_seeds": max_seeds,
                "rounds": [asdict(plan) for plan in self.rounds],
                "interrupted": self.sweep.interrupted,
            },
            indent=2,
        )


def _merge(total: SweepReport, new: SweepReport) -> None:
    """Keep one outcome per run identity: the latest that is not a skip (a seed that failed in one
    round and trained in the next reads FINISHED), else the skip."""
    by_identity: dict[str, Outcome] = {o.spec.identity.identity: o for o in total.outcomes}
    for outcome in new.outcomes:
        key = outcome.spec.identity.identity
        if key not in by_identity or outcome.status != "SKIPPED":
            by_identity[key] = outcome
    total.outcomes = list(by_identity.values())
    total.interrupted = total.interrupted or new.interrupted
    total.store_error = total.store_error or new.store_error
    total.budget_spent = total.budget_spent or new.budget_spent
    total.seconds_left.update(new.seconds_left)


Sweep = Callable[[BenchConfig, Tracker, list[Recipe], SweepSettings, Progress | None], SweepReport]


def _current_rows(config: BenchConfig, tracker: Tracker, settings: SweepSettings, names: set[str]) -> list[Row]:
    from harness.identity import current_hashes
    from harness.results.leaderboard import collect_rows, only_recipes

    hashes = current_hashes(config, settings.profile, settings.variant)
    return only_recipes(collect_rows(tracker, profile=settings.profile, current_hashes=hashes), names)


def _log_plan(tracker: Tracker, report: AdaptiveReport, settings: SweepSettings, max_seeds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-adaptive-") as scratch:
        path = Path(scratch) / ARTIFACT_ADAPTIVE_PLAN
        path.write_text(report.to_json(profile=settings.profile, max_seeds=max_seeds))
        tracker.log_artifact(tracker.leaderboard_run(settings.profile), path)


def run_adaptive(
    config: BenchConfig,
    tracker: Tracker,
    recipes: list[Recipe],
    settings: SweepSettings,
    *,
    max_seeds: int = DEFAULT_MAX_SEEDS,
    progress: Progress | None = None,
    sweep: Sweep | None = None,
) -> AdaptiveReport:
    """START_SEEDS seeds for every recipe, then rounds of ``plan_round`` until nothing is left
    to ask for; each round's recipes train through ``sweep`` (``run_sweep``), grouped by their
    seed count. Stops after a round that was interrupted or ran out of time budget."""
    from harness.errors import HarnessError

    if sweep is None:
        from harness.sweep.sweep import run_sweep as sweep
    if max_seeds < START_SEEDS:
        raise HarnessError(f"--max-seeds must be at least {START_SEEDS} (the first round), got {max_seeds}")
    progress = progress or Progress()
    names = {recipe.name for recipe in recipes}
    report = AdaptiveReport()
    first = RoundPlan(
        number=1,
        requests=tuple(
            SeedRequest(recipe.name, START_SEEDS, 0, (f"first round: {START_SEEDS} seeds each",)) for recipe in recipes
        ),
    )
    progress.note(
        f"Adaptive seeds: {START_SEEDS} per recipe, then more (up to {max_seeds}) only where a step's Δ "
        "or the comparison with the leader is still not resolved."
    )
    plan, tried = first, {}
    while True:
        report.rounds.append(plan)
        progress.note(plan.describe())
        _log_plan(tracker, report, settings, max_seeds)
        if not plan.requests:
            return report
        for seeds in sorted({request.seeds for request in plan.requests}):
            group = [config.recipe(r.recipe) for r in plan.requests if r.seeds == seeds]
            _merge(report.sweep, sweep(config, tracker, group, dataclasses.replace(settings, seeds=seeds), progress))
            if report.sweep.store_error:  # the store failed: no further round can be trusted to it
                return report
            if report.sweep.interrupted or report.sweep.budget_spent:
                _log_plan(tracker, report, settings, max_seeds)
                return report
        for request in plan.requests:
            tried[request.recipe] = max(tried.get(request.recipe, 0), request.seeds)
        rows = _current_rows(config, tracker, settings, names)
        plan = plan_round(config, rows, names, max_seeds=max_seeds, number=plan.number + 1, tried=tried)
