"""Run specs (recipe × seed × profile), each in its own process on this machine, with live progress
(``harness.sweep.ray_executor`` runs them on a Ray cluster).

The parent process never imports TensorFlow: it plans the sweep, skips finished identities,
creates each MLflow child run, starts ``python -m harness.run.worker`` for it, follows its epoch
events, and marks it FAILED with the reason if the process dies without finishing (a crash,
out-of-memory, ``kill -9``). A failure never stops the sweep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import BenchConfig
from harness.results.parents import child_description, parent_description
from harness.run import protocol
from harness.run.devices import (
    GpuSlots,
    threads_per_worker,
    worker_environment,
)
from harness.run.protocol import WorkerPayload
from harness.store.claims import HEARTBEAT_SECONDS, this_owner
from harness.store.connection import store_failure
from harness.store.schema import TAG_ERROR
from harness.store.tracking import DataInput, Tracker
from harness.sweep.plan import RunSpec, SweepSettings, split_finished

log = logging.getLogger(__name__)

STDERR_TAIL = 2000  # characters of a dead worker's stderr kept as its failure reason
STOP_GRACE_SECONDS = 20.0  # after SIGTERM, how long a worker may take to mark its run KILLED and exit
NO_ROOM = "not started: the time budget leaves no room for one epoch of it"


@dataclass
class Outcome:
    spec: RunSpec
    # FINISHED | FAILED | KILLED | SKIPPED | PLANNED (a dry run) | PAUSED (stopped at the time budget,
    # its checkpoint kept) | LEFT (not started: the time budget had no room for it) (| NOT_STARTED, internal)
    status: str
    run_id: str | None = None
    reason: str = ""
    test_accuracy: float | None = None
    seconds: float = 0.0
    interrupted: bool = False  # the user stopped the sweep while this run was in flight
    kept_locally: bool = False  # its results wait on disk for the store (harness.store.spool)
    epochs_done: int = 0  # the last epoch the worker reported
    epochs_planned: int = 0
    resumed_from: int = 0  # the epoch its checkpoint brought (0: trained from the start)


@dataclass
class SweepReport:
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False
    unavailable: dict[str, str] = field(default_factory=dict)  # recipe -> why it could not train (no weights)
    store_error: str | None = None  # the store failed: no new run was started after it
    budget_spent: bool = False  # the time budget ended the sweep: PAUSED and LEFT runs remain
    seconds_left: dict[str, float] = field(default_factory=dict)  # estimated, of each PAUSED / LEFT run

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]


class Progress:
    """Callbacks a sweep reports through (each does nothing here, and ``confirm`` says yes); the CLI
    draws them with rich."""

    def note(self, message: str) -> None: ...
    def status(self, message: str | None, *, transient: bool = False) -> None:
        """What the sweep is busy with before its first run (None: nothing any more); a
        ``transient`` message is only worth showing where it replaces the previous one."""

    def confirm(self, question: str) -> bool:
        """Whether to start a sweep estimated at over a day here; a library caller asked for it."""
        return True

    def run_resumed(self, spec: RunSpec, epoch: int) -> None: ...
    def estimated(self, seconds_by_identity: dict[str, float]) -> None: ...
    def sweep_planned(self, total: int, todo: int) -> None: ...
    def run_started(self, spec: RunSpec, index: int, total: int) -> None: ...
    def epochs_planned(self, spec: RunSpec, epochs: int) -> None: ...
    def epoch_done(self, spec: RunSpec, epoch: int, logs: dict[str, float]) -> None: ...
    def run_ended(self, outcome: Outcome) -> None: ...


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def deferred_stop_signals():
    """Ctrl-C, SIGTERM and SIGHUP land between two waits of the sweep loop, not inside one.

    Their handlers raise KeyboardInterrupt wherever the main thread is. Inside
    ``concurrent.futures.wait`` that can be between taking a future's lock and the ``with`` that
    releases it: the run's thread then blocks for ever on that lock, and so does the sweep (a
    hazard read from the standard library's code, not seen here). A signal is only recorded; the loop calls
    the function this yields, at a point where nothing is held, and it runs the handler that was
    installed (the CLI's, or Python's Ctrl-C). A signal left at its default or ignored (nohup) is
    not touched. Only in the main thread, where signal handlers run."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    received: list[tuple[int, object]] = []
    previous = {}
    for number in STOP_SIGNALS:
        handler = signal.getsignal(number)
        if callable(handler):
            previous[number] = handler
            signal.signal(number, lambda signum, frame: received.append((signum, frame)))

    def deliver() -> None:
        if received:
            signum, frame = received.pop(0)
            previous[signum](signum, frame)

    try:
        yield deliver
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        deliver()  # one that came after the last check still stops the sweep


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
    """Runs on this machine, ``jobs`` worker processes at a time (1 by default)."""

    def __init__(
        self,
        config: BenchConfig,
        tracker: Tracker,
        settings: SweepSettings,
        *,
        progress: Progress | None = None,
        python: str = sys.executable,
        gpus: list[str] | None = None,
        jobs: int | None = None,
        shares: dict[str, float] | None = None,
    ) -> None:
        """``gpus``: the ids runs are pinned to (default: none, every run on the CPU); ``jobs``:
        runs at once (default: ``settings.jobs`` or 1); ``shares``: the share of one GPU a run of
        each recipe takes (``--jobs-per-gpu auto``; default 1 / ``--jobs-per-gpu``)."""
        from harness.sweep.plan import runs_per_gpu

        self.config = config
        self.tracker = tracker
        self.settings = settings
        self.progress = progress or Progress()
        self.python = python
        self.jobs = jobs or settings.jobs or 1
        self.slots = GpuSlots(gpus or [], runs_per_gpu(settings))
        self.shares = dict(shares or {})
        self.threads = None if gpus else threads_per_worker(self.jobs)
        from harness.environment import git_commit

        self.commit = git_commit(Path(__file__).resolve().parent)
        self._stopping = threading.Event()
        self._done = threading.Event()
        self._live: set[subprocess.Popen] = set()
        self._claimed: set[str] = set()
        # Three locks, so that no thread ever takes one it already holds (a store failure while a
        # parent run was being created once deadlocked the sweep): _lock guards the sets above and
        # is never held across a store call; _parents_lock is held while a parent run is created;
        # _error_lock (innermost, held for one assignment) guards the first store error.
        self._lock = threading.Lock()
        self._parents_lock = threading.Lock()
        self._error_lock = threading.Lock()
        self._beating = threading.Lock()  # held while heartbeats are written
        self.owner = this_owner()
        self.store_error: str | None = None
        self._budget_spent = threading.Event()  # the deadline passed: runs in flight pause, none starts

    def sweep(
        self,
        specs: list[RunSpec],
        *,
        on_group_done: Callable[[RunSpec, str], None] | None = None,
        on_board_moved: Callable[[str], None] | None = None,
        first_epoch_seconds: dict[str, float] | None = None,
    ) -> SweepReport:
        """Run every spec not already FINISHED, in the order given; close each parent run (its
        status) when its seeds have ended.

        What a parent shows beyond its status is the caller's (the sweep's
        ``harness.results.parents.ParentFigures``): ``on_board_moved(profile)`` after each
        finished seed, and once more for each profile when the sweep is stopped;
        ``on_group_done(spec, parent_run_id)`` when a group's seeds have all ended. Both are
        store calls: a store failure in them stops the sweep as any other.

        Ctrl-C or SIGTERM (as KeyboardInterrupt in this thread) stops the sweep: in-flight
        runs are terminated and marked KILLED, nothing new starts, finished runs are kept.
        With a deadline (``settings.deadline``), a run starts only while its first epoch fits
        before it (``first_epoch_seconds``, by identity: start-up and one epoch, estimated),
        and at the deadline the runs in flight are stopped: each keeps its checkpoint (PAUSED);
        the runs never started are LEFT.
        """
        report = SweepReport()
        finished = self.tracker.finished_identities()
        todo, skipped = split_finished(specs, finished)
        report.outcomes.extend(Outcome(spec=s, status="SKIPPED") for s in skipped)
        self.progress.sweep_planned(len(specs), len(todo))
        parents: dict[str, str] = {}
        remaining: dict[str, int] = {}
        for spec in todo:
            remaining[spec.identity.group] = remaining.get(spec.identity.group, 0) + 1

        def parent_of(spec: RunSpec) -> str | None:
            with self._parents_lock:  # created when the group's first run starts, once
                group = spec.identity.group
                if group not in parents:
                    made = self._store(
                        "create a parent run",
                        self.tracker.parent_run,
                        spec.identity,
                        description=parent_description(spec, self.config),
                        params=self.parent_params(spec),
                        data=self.data_input(spec),
                    )
                    if made is None:
                        return None
                    parents[group] = made
                return parents[group]

        def supervise(index: int, spec: RunSpec) -> Outcome:
            if self._budget_spent.is_set() or not self._fits(spec, first_epoch_seconds or {}):
                return Outcome(spec=spec, status="LEFT", reason=NO_ROOM)
            if self._stopping.is_set():
                return Outcome(spec=spec, status="NOT_STARTED", interrupted=not self.store_error)
            share = self.shares.get(spec.recipe.name)
            try:  # waits while no GPU has room for this run's share
                gpu = self.slots.acquire(share, stop=self._stopping)
            except InterruptedError:
                return Outcome(spec=spec, status="NOT_STARTED", interrupted=not self.store_error)
            try:
                parent = parent_of(spec)
                if parent is None:
                    return Outcome(spec=spec, status="NOT_STARTED")
                self.progress.run_started(spec, index, len(todo))
                outcome = self.run_one(spec, parent, gpu=gpu)
            finally:
                self.slots.release(gpu, share)
            self.progress.run_ended(outcome)
            return outcome

        beating = threading.Thread(target=self._heartbeat, name="bench-heartbeat", daemon=True)
        beating.start()
        deadline = None
        if self.settings.deadline is not None:
            deadline = threading.Timer(max(self.settings.deadline - time.time(), 0.0), self._spend_budget)
            deadline.daemon = True
            deadline.start()
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="bench-run")
        futures = {pool.submit(supervise, index, spec): spec for index, spec in enumerate(todo)}
        pending = set(futures)
        try:
            with deferred_stop_signals() as deliver:
                while pending:
                    deliver()  # a stop signal raises KeyboardInterrupt here, with no lock held
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        outcome = future.result()
                        if outcome.status == "NOT_STARTED":
                            continue
                        report.outcomes.append(outcome)
                        group = outcome.spec.identity.group
                        remaining[group] -= 1
                        if outcome.status == "FINISHED" and not self._stopping.is_set() and on_board_moved:
                            # Each finished seed moves the board: every parent's figures follow it.
                            self._store("update the board", on_board_moved, outcome.spec.profile)
                        if remaining[group] == 0 and group in parents and not self._stopping.is_set():
                            self._store(
                                "update the parent run",
                                self._close_group,
                                outcome.spec,
                                parents[group],
                                group,
                                on_group_done,
                            )
        except KeyboardInterrupt:
            report.interrupted = True
            self.stop()
            for future in pending:
                outcome = self._result_while_stopping(future)
                if outcome is not None and outcome.status != "NOT_STARTED":
                    report.outcomes.append(outcome)
        finally:
            pool.shutdown(wait=True)
            self._done.set()
            if deadline is not None:
                deadline.cancel()
            report.budget_spent = any(o.status in ("PAUSED", "LEFT") for o in report.outcomes)
            if (
                report.interrupted or self._budget_spent.is_set()
            ):  # every parent touched shows the seeds that did finish
                for group, parent in list(parents.items()):
                    self._store("update the parent run", self.tracker.update_parent, parent, group)
                if not self.store_error and on_board_moved:
                    for profile in {spec.profile for spec in todo}:
                        self._store("update the board metrics", on_board_moved, profile)
            report.store_error = self.store_error
        return report

    def _fits(self, spec: RunSpec, first_epoch_seconds: dict[str, float]) -> bool:
        """Whether ``spec`` may start: no deadline, or its first epoch (estimated; nothing
        known: any time left) ends before it."""
        if self.settings.deadline is None:
            return True
        return time.time() + first_epoch_seconds.get(spec.identity.identity, 0.0) < self.settings.deadline

    def _checkpointed_epochs(self, spec: RunSpec) -> int:
        """The epochs the run's checkpoint holds (0: none), as its next attempt will find them."""
        from harness.run.checkpoint import checkpoint_path, finished_epochs

        identity = spec.identity
        path = checkpoint_path(
            identity.recipe, identity.seed, identity.identity, self.tracker.tracking_uri, self.tracker.experiment_name
        )
        return finished_epochs(path) or 0

    def _spend_budget(self) -> None:
        """The deadline: nothing new starts, and every run in flight stops now (a worker keeps
        its last checkpoint; the next command continues it)."""
        self._budget_spent.set()
        self.stop()

    def data_input(self, spec: RunSpec) -> DataInput:
        """The dataset every run of this sweep reads, for MLflow's Dataset column."""
        from harness.run.data import resolve_data_path

        path = resolve_data_path(self.settings.data_path)
        return DataInput(spec.identity.data_fingerprint, "keras.datasets.cifar10" if path is None else str(path))

    def parent_params(self, spec: RunSpec) -> dict[str, str]:
        """The recipe's flattened settings: what the compare view of two parents shows."""
        from harness.store.recipe_params import parent_params

        return parent_params(self.config, spec.recipe, spec.identity)

    def _result_while_stopping(self, future) -> Outcome | None:
        """A run's outcome once its worker has stopped. Another Ctrl-C / SIGTERM meanwhile kills
        the workers at once instead of abandoning the wait, so the summary still counts what
        finished and every run in flight ends KILLED."""
        while True:
            try:
                return future.result()
            except KeyboardInterrupt:
                self.stop(grace=0)
            except Exception as exc:  # noqa: BLE001  e.g. a closed terminal; the run is in MLflow already
                log.debug("pending run ended with %r while stopping", exc)
                return None

    def _store(self, what: str, call, *args, **kwargs):
        """A store call that must not end the sweep with a traceback: a locked sqlite store is
        retried (``harness.store.spool.retry_while_locked``); on failure the sweep starts no new run and
        reports why once (``store_error``); the next command repairs the store."""
        from harness.store.spool import retry_while_locked

        try:
            return retry_while_locked(call, *args, **kwargs)
        except Exception as error:  # noqa: BLE001  any store failure: server down, disk full, read-only
            self._store_failed(f"the tracking store failed to {what}: {store_failure(error)}")
            return None

    def _store_failed(self, why: str) -> None:
        """Keep the first store error (the one the STOPPED line names) and start nothing new."""
        with self._error_lock:
            if self.store_error is None:
                self.store_error = why
        self._stopping.set()

    def stop(self, grace: float | None = None) -> None:
        """Start nothing new and terminate every live worker (each marks its run KILLED); a worker
        still alive ``grace`` seconds later is killed, and its run marked KILLED here."""
        self._stopping.set()
        with self._lock:
            live = list(self._live)
        for process in live:
            # SIGTERM, not SIGINT: a worker started from a background job inherits an ignored
            # SIGINT; the worker turns SIGTERM into a clean KILLED run.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        killer = threading.Timer(STOP_GRACE_SECONDS if grace is None else grace, self._kill_survivors, args=(live,))
        killer.daemon = True
        killer.start()

    def _kill_survivors(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            if process.poll() is None:
                log.warning("worker %d had not stopped: killed", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()

    def _close_group(self, spec: RunSpec, parent_run_id: str, group: str, on_group_done) -> None:
        self.tracker.update_parent(parent_run_id, group)
        if on_group_done:
            on_group_done(spec, parent_run_id)

    def payload(self, spec: RunSpec, run_id: str) -> WorkerPayload:
        """What a worker needs to train one run (sent as JSON on its stdin)."""
        return WorkerPayload(
            config_path=str(self.config.path.resolve()),
            identity=spec.identity,
            tracking_uri=self.tracker.tracking_uri,
            experiment=self.tracker.experiment_name,
            run_id=run_id,
            data_path=self.settings.data_path,
            weights_dir=self.settings.weights_dir,
            jit_compile=self.settings.jit_compile,
            commit=self.commit,
            system_metrics=self.settings.system_metrics,
            log_model=self.settings.log_model,
            deadline=self.settings.deadline,
        )

    def run_one(self, spec: RunSpec, parent_run_id: str, *, gpu: str | None = None) -> Outcome:
        claimed = self._store(
            "claim the run",
            self.tracker.claim,
            spec.identity,
            parent_run_id,
            self.owner,
            description=child_description(spec),
            data=self.data_input(spec),
        )
        if claimed is None:
            return Outcome(spec=spec, status="NOT_STARTED", reason="the tracking store failed; not started")
        run_id, taken = claimed
        if run_id is None:  # another sweep has trained it, or is training it now
            return Outcome(spec=spec, status="SKIPPED", reason=taken)
        with self._lock:
            self._claimed.add(run_id)
        try:
            return self._supervise_run(spec, run_id, gpu)
        finally:
            with self._beating, self._lock:  # no heartbeat lands after the claim is removed
                self._claimed.discard(run_id)
            try:
                self.tracker.release(run_id)
            except Exception as error:  # noqa: BLE001  stale tags on an ended run mislead no sweep
                log.debug("could not remove the claim of run %s: %r", run_id, error)

    def _heartbeat(self) -> None:
        """Refresh the claims of the runs in flight until the sweep ends (a thread)."""
        while not self._done.wait(HEARTBEAT_SECONDS):
            with self._beating:
                with self._lock:
                    claimed = list(self._claimed)
                try:
                    self.tracker.heartbeat(claimed)
                except Exception as error:  # noqa: BLE001  a missed heartbeat only ages the claim
                    log.debug("heartbeat failed: %r", error)

    def _supervise_run(self, spec: RunSpec, run_id: str, gpu: str | None) -> Outcome:
        payload = self.payload(spec, run_id)
        started = time.perf_counter()
        outcome = Outcome(spec=spec, status="FAILED", run_id=run_id)
        with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
            log_path = Path(scratch) / "worker.log"
            returncode = self.execute(spec, payload, outcome, log_path, gpu=gpu)
            ended = outcome.status in ("FINISHED", "SKIPPED")  # SKIPPED: superseded, the worker ended it KILLED
            if outcome.status == "PAUSED":  # the worker paused itself before an epoch past the deadline
                # It closes its run KILLED itself, but the deadline's SIGTERM or the grace period's
                # SIGKILL can cut that short on a busy machine: closed here too (fail() leaves an
                # ended run as it is).
                if not self.store_error:
                    self._store("mark the run KILLED", self.tracker.fail, run_id, outcome.reason, status="KILLED")
            elif outcome.status == "NOT_STARTED":  # the worker could not open the store: not a failed run
                self._store("mark the run KILLED", self.tracker.fail, run_id, outcome.reason, status="KILLED")
            elif not ended and self._budget_spent.is_set() and not self.store_error:
                outcome.status, outcome.epochs_done = "PAUSED", self._checkpointed_epochs(spec)
                outcome.reason = (
                    f"stopped at the time budget; its checkpoint after epoch {outcome.epochs_done} of "
                    f"{outcome.epochs_planned} is kept and the next command continues it"
                    if outcome.epochs_done
                    else "stopped at the time budget before a checkpoint was written; the next command starts it again"
                )
                self._store("mark the run KILLED", self.tracker.fail, run_id, outcome.reason, status="KILLED")
                self._store("say why the run stopped", self.tracker.set_tag, run_id, TAG_ERROR, outcome.reason)
            elif not ended and self._stopping.is_set() and not self.store_error:
                outcome.status, outcome.reason, outcome.interrupted = "KILLED", "interrupted by the user", True
                self._store("mark the run KILLED", self.tracker.fail, run_id, outcome.reason, status="KILLED")
            elif not ended:
                tail = log_path.read_bytes().decode(errors="replace")[-STDERR_TAIL:] if log_path.exists() else ""
                if not outcome.reason:
                    outcome.reason = _describe_exit(returncode)
                    useful = _without_startup_noise(tail)
                    if useful:
                        outcome.reason += f"; stderr ends: {useful[-500:]}"
                self._store("mark the run FAILED", self.tracker.fail, run_id, outcome.reason)
            try:  # the run's log without the start-up lines every TensorFlow process prints, if any is left
                text = log_path.read_bytes().decode(errors="replace") if log_path.exists() else ""
                useful = _without_startup_noise(text)
                if useful and not self.store_error:  # a failing store would only make the sweep wait for its retries
                    log_path.write_text(useful + "\n")
                    self.tracker.log_artifact(run_id, log_path)
            except Exception:  # noqa: BLE001, S110  the log is a convenience; never fail the sweep on it
                pass
        outcome.seconds = time.perf_counter() - started
        return outcome

    def worker_environment(self, gpu: str | None) -> dict[str, str]:
        """What a worker process starts with: this environment, the GPU memory policy, its GPU
        pin and its CPU thread budget (``harness.run.devices.worker_environment``)."""
        deterministic = self.settings.variant.deterministic
        environment = worker_environment(os.environ, gpu=gpu, threads=self.threads, deterministic=deterministic)
        environment["PYTHONUNBUFFERED"] = "1"
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return environment

    def execute(
        self, spec: RunSpec, payload: WorkerPayload, outcome: Outcome, log_path: Path, *, gpu: str | None = None
    ) -> int:
        """Run one worker process on this machine, relaying its events; its stderr goes to
        ``log_path``. Returns its exit code (negative: the signal that killed it)."""
        with open(log_path, "w+b") as log:
            environment = self.worker_environment(gpu)
            process = subprocess.Popen(
                [self.python, "-P", "-m", "harness.run.worker"],  # -P: the working directory is not on sys.path
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=environment,
                text=True,
                start_new_session=True,  # Ctrl-C reaches the parent only; it decides
            )
            with self._lock:
                self._live.add(process)
            if self._stopping.is_set():  # stop() ran between the check and Popen
                process.send_signal(signal.SIGTERM)
            try:
                process.stdin.write(dataclasses.replace(payload, launched_at=time.time()).to_json())
                process.stdin.close()
                for line in process.stdout:
                    self._handle(spec, line, outcome)
                return process.wait()
            finally:
                with self._lock:
                    self._live.discard(process)

    def _handle(self, spec: RunSpec, line: str, outcome: Outcome) -> None:
        event = protocol.decode(line)
        if isinstance(event, protocol.Start):
            outcome.epochs_planned = event.epochs
            self.progress.epochs_planned(spec, event.epochs)
        elif isinstance(event, protocol.Epoch):
            outcome.epochs_done = event.epoch
            self.progress.epoch_done(spec, event.epoch, event.logs)
        elif isinstance(event, protocol.Done) and event.superseded:  # another run holds its identity
            outcome.status, outcome.reason = "SKIPPED", event.superseded
        elif isinstance(event, protocol.Resumed):
            outcome.resumed_from = event.epoch
            self.progress.run_resumed(spec, event.epoch)
        elif isinstance(event, protocol.Note):
            self.progress.note(f"{spec.label}: {event.message}")
        elif isinstance(event, protocol.Paused):
            outcome.status, outcome.epochs_done = "PAUSED", event.epoch
            outcome.reason = (
                f"paused at the time budget after epoch {event.epoch} of {event.epochs}; "
                "its checkpoint is kept and the next command continues it"
            )
        elif isinstance(event, protocol.Done):
            outcome.status = "FINISHED"
            outcome.test_accuracy = event.test_accuracy
            if event.spooled:  # the results are safe on disk; the store is not taking writes
                outcome.reason, outcome.kept_locally = f"results kept locally: {event.spooled}", True
                self._store_failed(f"the tracking store refused a run's results ({event.spooled})")
        elif isinstance(event, protocol.Error) and event.store:  # nothing trained: the store failed
            outcome.status, outcome.reason = "NOT_STARTED", event.reason
            self._store_failed(event.reason)
        elif isinstance(event, protocol.Error):
            outcome.status = "FAILED"
            outcome.reason = event.reason


# Lines every TensorFlow worker prints on start-up (CPU build notes, CUDA probes on a machine
# without a GPU, read as a fault by a newcomer). They say nothing about a run, so neither a
# failure's reason nor the run's worker.log artifact keeps them. Nor MLflow's links, printed as
# each run ends when the store is a server: the run's page says where it is.
STARTUP_NOISE = (
    "🏃 View run ",
    "🧪 View experiment at: ",
    "oneDNN custom operations are on",
    "errors from different computation orders",
    "TF_ENABLE_ONEDNN_OPTS",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "failed call to cuInit",
    "This TensorFlow binary is optimized",
    "To enable the following instructions",
    "computation placer already registered",
    "Unable to register cu",
    "WARNING: All log messages before absl::InitializeLog()",
)


def _without_startup_noise(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if not any(noise in line for noise in STARTUP_NOISE)]
    return "\n".join(lines).strip()
