"""Run specs (recipe × seed × profile), each in its own process, with live progress.

The parent process never imports TensorFlow: it plans the sweep, skips finished identities,
creates each MLflow child run, starts ``python -m harness.worker`` for it, follows its epoch
events, and marks it FAILED with the reason if the process dies without finishing (a crash,
out-of-memory, ``kill -9``). A failure never stops the sweep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import BenchConfig, Recipe
from harness.tracking import RunIdentity, Tracker

STDERR_TAIL = 2000  # characters of a dead worker's stderr kept as its failure reason


@dataclass(frozen=True)
class RunSpec:
    recipe: Recipe
    profile: str
    seed: int
    identity: RunIdentity


@dataclass
class Outcome:
    spec: RunSpec
    status: str  # FINISHED | FAILED | KILLED | SKIPPED
    run_id: str | None = None
    reason: str = ""
    test_accuracy: float | None = None
    seconds: float = 0.0
    interrupted: bool = False  # the user stopped the sweep while this run was in flight


@dataclass
class SweepReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]


def plan(
    config: BenchConfig, recipes: list[Recipe], *, profile: str, seeds: list[int], data_fingerprint: str
) -> list[RunSpec]:
    """Every (recipe, seed) under ``profile``, in file order then seed order."""
    chosen = config.profile(profile)
    specs = []
    for recipe in recipes:
        config_hash = config.config_hash(recipe, chosen)
        for seed in seeds:
            identity = RunIdentity(
                recipe=recipe.name,
                profile=profile,
                seed=seed,
                config_hash=config_hash,
                data_fingerprint=data_fingerprint,
                report=recipe.source.report,
            )
            specs.append(RunSpec(recipe=recipe, profile=profile, seed=seed, identity=identity))
    return specs


class Progress:
    """Callbacks the executor reports through; the CLI draws them with rich."""

    def sweep_planned(self, total: int, todo: int) -> None: ...
    def run_started(self, spec: RunSpec, index: int, total: int) -> None: ...
    def epochs_planned(self, spec: RunSpec, epochs: int) -> None: ...
    def epoch_done(self, spec: RunSpec, epoch: int, logs: dict[str, float]) -> None: ...
    def run_ended(self, outcome: Outcome) -> None: ...


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (killed: out of memory or kill -9)" if name == "SIGKILL" else ""
        return f"worker process died from {name}{hint}"
    return f"worker process exited with code {returncode}"


class LocalExecutor:
    """One worker process at a time on this machine."""

    def __init__(
        self,
        config: BenchConfig,
        tracker: Tracker,
        *,
        data_path: str | None,
        progress: Progress | None = None,
        python: str = sys.executable,
    ) -> None:
        self.config = config
        self.tracker = tracker
        self.data_path = data_path
        self.progress = progress or Progress()
        self.python = python
        from harness.environment import git_commit

        self.commit = git_commit(Path(__file__).resolve().parent)

    def sweep(self, specs: list[RunSpec], *, on_group_done: Callable[[str, str], None] | None = None) -> SweepReport:
        """Run every spec not already FINISHED; update each parent run as its seeds end."""
        report = SweepReport()
        finished = self.tracker.finished_identities()
        todo = [s for s in specs if s.identity.identity not in finished]
        report.outcomes.extend(Outcome(spec=s, status="SKIPPED") for s in specs if s not in todo)
        self.progress.sweep_planned(len(specs), len(todo))
        parents: dict[str, str] = {}
        try:
            self._run_all(todo, parents, report, on_group_done)
        finally:
            # Whatever happened, every parent touched shows the seeds that did finish.
            for group, parent in parents.items():
                if not any(o.spec.identity.group == group and o.interrupted for o in report.outcomes):
                    continue
                self.tracker.update_parent(parent, group)
        return report

    def _run_all(self, todo, parents, report, on_group_done) -> None:
        for index, spec in enumerate(todo):
            group = spec.identity.group
            if group not in parents:
                parents[group] = self.tracker.parent_run(spec.identity, description=spec.recipe.summary)
            self.progress.run_started(spec, index, len(todo))
            try:
                outcome = self.run_one(spec, parents[group])
            except KeyboardInterrupt:  # arrived outside the worker's lifetime (e.g. while logging)
                outcome = Outcome(spec=spec, status="KILLED", reason="interrupted", interrupted=True)
            report.outcomes.append(outcome)
            self.progress.run_ended(outcome)
            last_of_group = all(s.identity.group != group for s in todo[index + 1 :])
            if last_of_group:
                self.tracker.update_parent(parents[group], group)
                self._publish(spec, parents[group], group)
                if on_group_done:
                    on_group_done(group, parents[group])
            if outcome.interrupted:
                break

    def _publish(self, spec: RunSpec, parent_run_id: str, group: str) -> None:
        from harness.publish import publish_parent_plots

        try:
            publish_parent_plots(self.tracker, parent_run_id, group, title=f"{spec.recipe.name} [{spec.profile}]")
        except Exception as error:  # noqa: BLE001  a plot must never cost the sweep its results
            self.tracker.client.set_tag(parent_run_id, "bench.plot_error", str(error)[:500])

    def run_one(self, spec: RunSpec, parent_run_id: str) -> Outcome:
        run_id = self.tracker.child_run(spec.identity, parent_run_id)
        payload = {
            "config_path": str(self.config.path.resolve()),
            "recipe": spec.recipe.name,
            "profile": spec.profile,
            "seed": spec.seed,
            "config_hash": spec.identity.config_hash,
            "data_path": self.data_path,
            "data_fingerprint": spec.identity.data_fingerprint,
            "tracking_uri": self.tracker.tracking_uri,
            "experiment": self.tracker.client.get_experiment(self.tracker.experiment_id).name,
            "run_id": run_id,
            "commit": self.commit,
        }
        started = time.perf_counter()
        outcome = Outcome(spec=spec, status="FAILED", run_id=run_id)
        with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
            log_path = Path(scratch) / "worker.log"
            with open(log_path, "w+b") as log:
                environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
                environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
                process = subprocess.Popen(
                    [self.python, "-m", "harness.worker"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=environment,
                    text=True,
                    start_new_session=True,  # Ctrl-C reaches the parent only; it decides
                )
                try:
                    process.stdin.write(json.dumps(payload))
                    process.stdin.close()
                    for line in process.stdout:
                        self._handle(spec, line, outcome)
                    returncode = process.wait()
                except KeyboardInterrupt:
                    # SIGTERM, not SIGINT: a worker started from a background job inherits an
                    # ignored SIGINT; the worker turns SIGTERM into a clean KILLED run.
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                    outcome.interrupted = True
                    if outcome.status != "FINISHED":  # it may have finished just before the signal
                        outcome.status, outcome.reason = "KILLED", "interrupted by the user"
                        self.tracker.fail(run_id, outcome.reason, status="KILLED")
                    returncode = None
                if returncode is not None and outcome.status != "FINISHED":
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-STDERR_TAIL:]
                    if not outcome.reason:
                        outcome.reason = _describe_exit(returncode)
                        if tail.strip():
                            outcome.reason += f"; stderr ends: {tail.strip()[-500:]}"
                    self.tracker.fail(run_id, outcome.reason)
            try:
                self.tracker.client.log_artifact(run_id, str(log_path))
            except Exception:  # noqa: BLE001, S110  the log is a convenience; never fail the sweep on it
                pass
        outcome.seconds = time.perf_counter() - started
        return outcome

    def _handle(self, spec: RunSpec, line: str, outcome: Outcome) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        kind = event.get("event")
        if kind == "start":
            self.progress.epochs_planned(spec, int(event["epochs"]))
        elif kind == "epoch":
            self.progress.epoch_done(spec, int(event["epoch"]), event.get("logs", {}))
        elif kind == "done":
            outcome.status = "FINISHED"
            outcome.test_accuracy = float(event["test_accuracy"])
        elif kind == "error":
            outcome.status = "FAILED"
            outcome.reason = str(event.get("reason", ""))
